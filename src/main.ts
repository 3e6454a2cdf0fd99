import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CONFIG_FILE, readConfigFile } from './config/config-file.js';
import { readCpuLimit } from './config/cpu-limit.js';
import { CorralError, ExitCode, UsageError, type ExitCodeValue } from './exit-codes.js';
import { isControlCommand } from './control/commands.js';
import { installCrashHandler } from './platform/crash.js';
import { createLogOutput, type LogOutput } from './telemetry/logger.js';
import { parseCommandLine, preliminarySettings, type CommandLine, type CorralConfig } from './config/resolve.js';
import { VERSION } from './version.js';
import { checkWorkerCount, readMachineLimits } from './config/worker-capacity.js';
import { UVICORN_WORKER_CLASSES } from './config/settings-table.js';
import { checkWorkerClass } from './config/worker-class.js';
import { serve, type LoadCommandLine } from './master.js';

/**
 * The command line: a control subcommand, or the server's options read from every source, then
 * help, version, --print-config, --check-config, or the logger and the master (src/master.ts).
 */

/** How long an exiting corral waits for its queued log records to be written. */
const EXIT_LOG_FLUSH_MS = 1000;

/** The config file to read: -c (or $CORRAL_CONFIG, or a CMD_ARGS variable), else ./gunicorn.conf.py when present. */
function configFileToRead(given: string | undefined): string | undefined {
  if (given !== undefined) return given;
  return fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

function changeDirectory(dir: string | undefined, startCwd: string): void {
  if (dir === undefined) return;
  // Relative to where corral started, so a HUP's re-read lands in the same place.
  const target = path.resolve(startCwd, dir);
  if (target === process.cwd()) return;
  try {
    process.chdir(target);
  } catch {
    throw new UsageError(`--chdir ${JSON.stringify(dir)}: no such directory`);
  }
}

/** Reads every configuration source (chdir first, then the config file) into a command line. */
async function resolveCommandLine(argv: readonly string[], startCwd: string, signal?: AbortSignal): Promise<CommandLine> {
  const first = preliminarySettings(argv, process.env);
  if (first.helpOrVersion) return parseCommandLine(argv, process.env);
  changeDirectory(first.chdir, startCwd);
  const file = configFileToRead(first.config);
  // The reader also checks a worker class named above or in the file: one Python run for both.
  const workerClassHint = { upper: first.aboveFile, known: Object.keys(UVICORN_WORKER_CLASSES) };
  const configFile = file === undefined ? undefined : await readConfigFile(file, first.python, process.cwd(), { workerClassHint, ...(signal ? { signal } : {}) });
  if (configFile?.printed) process.stderr.write(configFile.printed);
  const context = { configFile, cpuLimit: (root: string) => readCpuLimit(root) };
  let parsed = parseCommandLine(argv, process.env, context);
  // A chdir set in the config file itself applies after reading it, as in gunicorn.
  if ('config' in parsed) changeDirectory(parsed.config.chdir, startCwd);
  // A worker class corral does not know by name is imported and checked once, before anything starts.
  if ('config' in parsed && parsed.config.workerClass?.pending) {
    const fromReader = { inspection: configFile?.workerClass, python: first.python };
    const workerClass = await checkWorkerClass(parsed.config.workerClass.name, parsed.config, fromReader, process.env);
    parsed = parseCommandLine(argv, process.env, { ...context, workerClass });
  }
  return parsed;
}

function printNotices(config: CorralConfig): void {
  for (const notice of config.notices) process.stderr.write(`corral: ${notice.level === 'warn' ? 'warning' : 'note'}: ${notice.msg}\n`);
}

/** Runs corral with these arguments; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<ExitCodeValue> {
  // The client (and yargs) load only for a subcommand: a running master never needs them.
  if (isControlCommand(argv[0])) return (await import('./control/client.js')).runControlCommand(argv);
  let config: CorralConfig;
  // Before any --chdir: USR2 starts the next master from here, and HUP re-reads relative to it.
  const startCwd = process.cwd();
  // HUP re-reads every source again: the command line, the environment and the config file.
  // One code path at start and on HUP: at start nothing runs yet, but the read is the same.
  const load: LoadCommandLine = (signal) => resolveCommandLine(argv, startCwd, signal);
  try {
    const parsed = await load();
    if (parsed.kind === 'help') {
      process.stdout.write(`${parsed.text}\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'version') {
      process.stdout.write(`corral ${VERSION} (Node.js ${process.version}, ${os.platform()})\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'print-config') {
      printNotices(parsed.config);
      const { configAsJson, configAsText } = await import('./config/print-config.js');
      process.stdout.write(`${parsed.json ? configAsJson(parsed.config) : configAsText(parsed.config)}\n`);
      return ExitCode.ok;
    }
    if (parsed.kind === 'check-config') {
      printNotices(parsed.config);
      const result = (await import('./config/check-config.js')).checkAppImports(parsed.config, process.env);
      if (result.output) process.stderr.write(`${result.output}\n`);
      process.stderr.write(result.ok ? `corral: configuration OK; ${parsed.config.app} imports\n` : `corral: check failed\n`);
      return result.ok ? ExitCode.ok : ExitCode.runtime;
    }
    config = parsed.config;
    // Refused before anything is bound: -w 100000 would spawn until the master runs out of descriptors.
    const crowded = checkWorkerCount(config.workers, readMachineLimits(), config.reload);
    if (crowded) config = { ...config, notices: [...config.notices, { level: 'warn', setting: 'workers', msg: crowded }] };
  } catch (error) {
    if (error instanceof CorralError) {
      if (error.detail) process.stderr.write(error.detail.endsWith('\n') ? error.detail : `${error.detail}\n`);
      process.stderr.write(`corral: error: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
  let output: LogOutput;
  try {
    output = createLogOutput(config.logFormat, config.logLevel, {
      errorLogFile: config.errorLogFile,
      accessLogFile: config.accessLogFile,
    });
  } catch (error) {
    process.stderr.write(`corral: error: cannot open a log file: ${(error as Error).message}\n`);
    return ExitCode.runtime;
  }
  for (const notice of config.notices) {
    const fields = notice.setting ? { setting: notice.setting } : {};
    if (notice.level === 'warn') output.logger.warn(fields, notice.msg);
    else output.logger.info(fields, notice.msg);
  }
  if (config.procName) process.title = config.procName;
  installCrashHandler(output.logger);
  try {
    return await serve(config, load, output, startCwd);
  } catch (error) {
    if (error instanceof CorralError) {
      output.logger.fatal({ code: error.exitCode }, error.message);
      return error.exitCode;
    }
    output.logger.fatal({ err: error }, 'corral failed');
    return ExitCode.runtime;
  } finally {
    // What is still queued goes out now, within a bound: a stdout nobody reads must not hold the exit.
    await output.flush(EXIT_LOG_FLUSH_MS);
  }
}
