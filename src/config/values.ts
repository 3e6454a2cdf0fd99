import { UsageError } from '../exit-codes.js';
import { parseSize } from '../worker/resources.js';
import type { Setting, Value } from './settings-table.js';

/** Names uvicorn also accepts as module:attribute for these settings. */
const IMPORTABLE = new Set(['loop', 'http', 'ws']);

const TRUE_WORDS = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

/**
 * Turns one raw value (a command-line word, an environment string, or a value from a config file)
 * into the setting's type. `label` names where it came from for the one-line error, e.g. `--workers`,
 * `$CORRAL_WORKERS`, `workers in gunicorn.conf.py`.
 */
export function coerce(setting: Setting, raw: unknown, label: string): Value {
  const fail = (expected: string): never => {
    throw new UsageError(`${label} ${JSON.stringify(raw)}: expected ${expected}`);
  };
  if (raw === null || raw === undefined) return null;
  const text = typeof raw === 'string' ? raw.trim() : undefined;
  switch (setting.type) {
    case 'int':
    case 'posint':
    case 'signed-int': {
      const value = typeof raw === 'number' ? raw : text !== undefined && /^[-+]?\d+$/.test(text) ? Number(text) : NaN;
      const min = setting.type === 'posint' ? 1 : setting.type === 'int' ? 0 : -Infinity;
      if (!Number.isInteger(value) || value < min) fail(min === 1 ? 'a whole number of 1 or more' : min === 0 ? 'a whole number of 0 or more' : 'a whole number');
      return value;
    }
    case 'float': {
      const value = typeof raw === 'number' ? raw : text !== undefined && text !== '' ? Number(text) : NaN;
      if (!Number.isFinite(value) || value < 0) fail('a number of 0 or more');
      return value;
    }
    case 'positive': {
      const value = typeof raw === 'number' ? raw : text !== undefined && text !== '' ? Number(text) : NaN;
      if (!Number.isFinite(value) || value <= 0) fail('a number greater than 0');
      return value;
    }
    case 'size': {
      const value = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw : text !== undefined ? parseSize(text) : undefined;
      if (value === undefined) fail('a size such as 512M, 2G or 0 for no limit');
      return value!;
    }
    case 'workers': {
      if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto') return 'auto';
      const value = typeof raw === 'number' ? raw : text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(value) || value < 1) fail('a whole number of 1 or more, or auto');
      return value;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'number' && (raw === 0 || raw === 1)) return raw === 1;
      const word = text?.toLowerCase() ?? '';
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      return fail('true or false');
    }
    case 'octal': {
      const digits = typeof raw === 'number' ? raw.toString(8) : (text ?? '').replace(/^0o/i, '');
      if (!/^[0-7]{1,4}$/.test(digits)) fail('an octal number such as 0o117');
      return `0o${parseInt(digits, 8).toString(8).padStart(3, '0')}`;
    }
    case 'choice': {
      let word = typeof raw === 'string' ? raw.trim() : fail(`one of ${setting.choices!.join(', ')}`);
      if (setting.name === 'loglevel') {
        word = word.toLowerCase();
        if (word === 'warn') word = 'warning';
      }
      if (setting.choices!.includes(word) || (IMPORTABLE.has(setting.name) && /^[\w.]+:[\w.]+$/.test(word))) return word;
      return fail(`one of ${setting.choices!.join(', ')}${IMPORTABLE.has(setting.name) ? ', or module:attribute' : ''}`);
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw : [raw];
      return items.map((item) => {
        if (typeof item === 'number') return String(item);
        if (typeof item !== 'string') return fail('a string or a list of strings');
        if (item.trim() === '') return fail('a value that is not empty');
        return item;
      });
    }
    case 'dict':
      if (typeof raw === 'object' && !Array.isArray(raw)) return raw as Record<string, unknown>;
      return fail('a dict');
    case 'hook':
      return typeof raw === 'string' ? raw : fail('a function');
    case 'string':
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      // gunicorn accepts lists for comma-separated settings (forwarded_allow_ips = ['10.0.0.1', ...]).
      if (Array.isArray(raw) && raw.every((item) => typeof item === 'string')) return raw.join(',');
      return fail('a string');
  }
}

/** Whether a value equals the setting's default (lists and dicts by content). */
export function isDefaultValue(setting: Setting, value: Value): boolean {
  return JSON.stringify(value) === JSON.stringify(setting.default);
}
