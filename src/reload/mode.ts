import type { CorralConfig } from '../config/resolve.js';

/** Seconds an old worker gets to finish its requests after a reload: an open stream must not hold the swap up. */
export const RELOAD_DRAIN_SECONDS = 3;

/**
 * Reload mode changes four things: every worker is replaced at once (max-surge = workers), old
 * workers drain for a few seconds at most, workers report their modules for the standby, and
 * --preload is off (the fork server kept across saves must never hold the app's own, changing, code).
 */
export function applyReloadMode(config: CorralConfig): CorralConfig {
  if (!config.reload) return config;
  return { ...config, maxSurge: config.workers, gracefulTimeout: Math.min(config.gracefulTimeout, RELOAD_DRAIN_SECONDS), preloadApp: false };
}

