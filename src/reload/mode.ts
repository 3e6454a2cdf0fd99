import type { CorralConfig } from '../config/resolve.js';

/** Seconds an old worker gets to finish its requests after a reload: an open stream must not hold the swap up. */
export const RELOAD_DRAIN_SECONDS = 3;

/**
 * Reload mode changes three things: every worker is replaced at once (max-surge = workers), old
 * workers drain for a few seconds at most, and workers report their modules for the standby.
 */
export function applyReloadMode(config: CorralConfig): CorralConfig {
  if (!config.reload) return config;
  return { ...config, maxSurge: config.workers, gracefulTimeout: Math.min(config.gracefulTimeout, RELOAD_DRAIN_SECONDS) };
}

