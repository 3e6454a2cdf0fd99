import { UsageError } from '../exit-codes.js';
import { suggestName } from './misspelling.js';
import { FLAGS, type Setting } from './settings-table.js';

/** One option as written: the flag the user typed and its raw value. */
export interface OptionWord {
  setting: Setting;
  flag: string;
  value: string | boolean;
}

export interface ParsedArgv {
  options: OptionWord[];
  positionals: string[];
  help: boolean;
  version: boolean;
}

const HELP_FLAGS = new Set(['-h', '--help']);
const VERSION_FLAGS = new Set(['-V', '-v', '--version']);

function unknownOption(flag: string, what: string): never {
  const suggestion = suggestName(flag, FLAGS.keys());
  throw new UsageError(`${what}: unknown option ${flag}${suggestion ? ` (did you mean ${suggestion}?)` : ''}; see corral --help`);
}

/**
 * Reads argv the way gunicorn's argparse and uvicorn's click both accept it: `--opt VALUE`,
 * `--opt=VALUE`, `-x VALUE`, `-xVALUE`, `-x=VALUE`, flags without values, `--` ending options.
 * A value is taken as is even when it starts with `-` (`--access-logfile -`).
 *
 * Not yargs (which corral's subcommands use): the same settings table also reads GUNICORN_CMD_ARGS,
 * CORRAL_* variables and config files and records each value's source for --print-config, and
 * yargs's conventions differ from argparse's and click's where real command lines depend on them —
 * an array option swallows the APP after `-b ADDR`, a lone `-` becomes a positional, `--no-…`
 * negates every boolean, and values are coerced to numbers before the setting sees them.
 */
export function parseArgv(argv: readonly string[], what = 'command line'): ParsedArgv {
  const result: ParsedArgv = { options: [], positionals: [], help: false, version: false };
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    if (word === '--') {
      result.positionals.push(...argv.slice(index + 1));
      break;
    }
    if (HELP_FLAGS.has(word)) {
      result.help = true;
      continue;
    }
    if (VERSION_FLAGS.has(word)) {
      result.version = true;
      continue;
    }
    if (!word.startsWith('-') || word === '-' || /^-\d/.test(word)) {
      result.positionals.push(word);
      continue;
    }
    let flag = word;
    let attached: string | undefined;
    const equals = word.indexOf('=');
    if (word.startsWith('--') && equals > 0) {
      flag = word.slice(0, equals);
      attached = word.slice(equals + 1);
    } else if (!word.startsWith('--') && word.length > 2) {
      flag = word.slice(0, 2);
      attached = word[2] === '=' ? word.slice(3) : word.slice(2);
    }
    const target = FLAGS.get(flag);
    if (!target) unknownOption(flag, what);
    if (target.sets !== undefined) {
      if (attached !== undefined) throw new UsageError(`${what}: ${flag} takes no value (got ${JSON.stringify(word)})`);
      result.options.push({ setting: target.setting, flag, value: target.sets });
      continue;
    }
    let value = attached;
    if (value === undefined) {
      if (index + 1 >= argv.length) throw new UsageError(`${what}: ${flag} needs a value`);
      value = argv[++index]!;
    }
    result.options.push({ setting: target.setting, flag, value });
  }
  return result;
}
