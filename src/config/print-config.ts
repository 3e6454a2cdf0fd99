import type { CorralConfig } from './resolve.js';
import { SETTINGS_BY_NAME } from './settings-table.js';

/** --print-config --json: one object keyed by setting name, each with its value and source. */
export function configAsJson(config: CorralConfig): string {
  const result: Record<string, { value: unknown; source: string }> = {};
  for (const [name, resolved] of Object.entries(config.settings)) result[name] = { value: resolved.value, source: resolved.source };
  return JSON.stringify(result, null, 2);
}

/** --print-config: one line a setting, `name = value  [source]`, with what corral does with it. */
export function configAsText(config: CorralConfig): string {
  const entries = Object.entries(config.settings);
  const width = Math.max(...entries.map(([name]) => name.length));
  const lines = entries.map(([name, resolved]) => {
    const support = SETTINGS_BY_NAME.get(name)?.support;
    const mark = support === 'unsupported' && resolved.source !== 'default' ? '  (not supported)' : support === 'ignored' && resolved.source !== 'default' ? '  (no effect)' : '';
    return `${name.padEnd(width)} = ${JSON.stringify(resolved.value)}  [${resolved.source}]${mark}`;
  });
  return lines.join('\n');
}
