import { watch, type FSWatcher } from 'chokidar';
import type { WatchRules } from './matcher.js';

export type ChangeKind = 'add' | 'change' | 'unlink';

export interface SourceWatcher {
  /** Resolves once the initial scan is done: changes from then on are reported. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Watches the reload directories and extra files and reports each change to a watched file.
 * chokidar (no globs since v4) gets the rules as its `ignored` function, which also keeps it out of
 * virtualenvs and caches; its `atomic` option turns an editor's delete-and-rename save into one change.
 */
export function watchSources(
  rules: WatchRules,
  onChange: (file: string, kind: ChangeKind) => void,
  onError: (error: unknown) => void,
): SourceWatcher {
  const watcher: FSWatcher = watch([...rules.dirs, ...rules.extraFiles], {
    ignoreInitial: true,
    atomic: true,
    followSymlinks: true,
    ignored: (target, stats) => rules.ignored(target, stats),
  });
  const report = (kind: ChangeKind) => (file: string) => {
    if (rules.isWatchedFile(file)) onChange(file, kind);
  };
  watcher.on('add', report('add'));
  watcher.on('change', report('change'));
  watcher.on('unlink', report('unlink'));
  watcher.on('error', onError);
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { ready, close: () => watcher.close() };
}
