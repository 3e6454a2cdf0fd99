import path from 'node:path';
import picomatch from 'picomatch';

/** uvicorn's defaults for --reload-include and --reload-exclude. */
export const DEFAULT_INCLUDES: readonly string[] = ['*.py'];
export const DEFAULT_EXCLUDES: readonly string[] = ['.*', '*.py[cod]', '.sw.*', '~*'];
/** Directories that never hold the app's own code: never descended into, whatever the patterns say. */
export const NEVER_WATCHED_DIRS: readonly string[] = ['.git', '__pycache__', '.venv', 'venv', 'node_modules', 'site-packages'];

export interface WatchRuleOptions {
  /** Directories to watch (absolute). */
  dirs: readonly string[];
  includes: readonly string[];
  excludes: readonly string[];
  /** Files that reload whatever the patterns say (absolute). */
  extraFiles: readonly string[];
  /** Whether a path names an existing directory: an exclude that does is a directory to skip, as in uvicorn. */
  isDirectory(target: string): boolean;
}

type Matcher = (candidate: string) => boolean;

/**
 * A pattern matched the way Python's PurePath.match does it: a relative pattern matches the last
 * segments of the path (`*.py` the file name, `templates/*.html` the last two), an absolute one the
 * whole path. `*` never crosses a `/`, and leading dots are ordinary characters.
 */
export function pathPatternMatcher(pattern: string): Matcher {
  const match = picomatch(pattern, { dot: true });
  if (pattern.startsWith('/')) return (candidate) => match(candidate);
  const segments = pattern.split('/').filter(Boolean).length;
  return (candidate) => {
    const parts = candidate.split(/[\\/]/).filter(Boolean);
    if (parts.length < segments) return false;
    return match(parts.slice(-segments).join('/'));
  };
}

function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Which files a reload watches, with uvicorn's include/exclude semantics: a file counts when it
 * matches an include pattern and no exclude pattern (an include given literally as the file's path
 * always counts). A default include the user excludes, or a default exclude the user includes, is
 * dropped. Excludes naming existing directories skip those directories. On top of uvicorn, the
 * directories in NEVER_WATCHED_DIRS and directories whose name matches a one-segment exclude (`.*`
 * covers .git, .mypy_cache, .tox) are never entered, so a virtualenv inside the project costs nothing.
 */
export class WatchRules {
  readonly dirs: readonly string[];
  readonly extraFiles: ReadonlySet<string>;
  readonly includes: readonly string[];
  readonly excludes: readonly string[];
  readonly excludedDirs: readonly string[];
  private readonly includeMatchers: { pattern: string; match: Matcher }[];
  private readonly excludeMatchers: Matcher[];
  /** Excludes of one segment also apply to directory names. */
  private readonly dirNameExcludes: Matcher[];

  constructor(options: WatchRuleOptions) {
    this.dirs = options.dirs.map((dir) => path.resolve(dir));
    this.extraFiles = new Set(options.extraFiles.map((file) => path.resolve(file)));
    const includes = DEFAULT_INCLUDES.filter((pattern) => !options.excludes.includes(pattern));
    this.includes = [...new Set([...includes, ...options.includes])];
    const excludes = DEFAULT_EXCLUDES.filter((pattern) => !options.includes.includes(pattern));
    const excludedDirs: string[] = [];
    for (const pattern of options.excludes) {
      if (options.isDirectory(pattern)) excludedDirs.push(path.resolve(pattern));
      else excludes.push(pattern);
    }
    this.excludes = [...new Set(excludes)];
    this.excludedDirs = excludedDirs;
    this.includeMatchers = this.includes.map((pattern) => ({ pattern, match: pathPatternMatcher(pattern) }));
    this.excludeMatchers = this.excludes.map(pathPatternMatcher);
    this.dirNameExcludes = this.excludes.filter((pattern) => !pattern.includes('/')).map(pathPatternMatcher);
  }

  /** The watched directory holding this path, if any. */
  private rootOf(target: string): string | undefined {
    return this.dirs.find((dir) => isInside(dir, target));
  }

  /** Whether a directory of this name, at this place, is never entered. */
  isPrunedDirectory(dir: string): boolean {
    const absolute = path.resolve(dir);
    if (this.excludedDirs.some((excluded) => isInside(excluded, absolute))) return true;
    const name = path.basename(absolute);
    return NEVER_WATCHED_DIRS.includes(name) || this.dirNameExcludes.some((match) => match(name));
  }

  /** Whether some directory between the watched root and this path (itself excluded) is never entered. */
  private underPrunedDirectory(target: string): boolean {
    const root = this.rootOf(target);
    if (root === undefined) return true;
    let dir = path.dirname(target);
    while (isInside(root, dir) && dir !== root) {
      if (this.isPrunedDirectory(dir)) return true;
      dir = path.dirname(dir);
    }
    return false;
  }

  /** Whether a file is the app's code as far as watching goes: inside a watched directory, not in a skipped one. */
  isInWatchedTree(file: string): boolean {
    const absolute = path.resolve(file);
    return this.rootOf(absolute) !== undefined && !this.underPrunedDirectory(absolute);
  }

  /** Whether a change to this file reloads. */
  isWatchedFile(file: string): boolean {
    const absolute = path.resolve(file);
    if (this.extraFiles.has(absolute)) return true;
    if (!this.isInWatchedTree(absolute)) return false;
    for (const { pattern, match } of this.includeMatchers) {
      if (!match(absolute)) continue;
      if (absolute.endsWith(pattern)) return true;
      return !this.excludeMatchers.some((exclude) => exclude(absolute));
    }
    return false;
  }

  /**
   * chokidar's `ignored`: called for directories and files, sometimes before their stats are known.
   * Unknown entries are only ignored when their name rules them out as a directory; the event
   * handler checks files again with isWatchedFile.
   */
  ignored(target: string, stats?: { isDirectory(): boolean; isFile(): boolean }): boolean {
    const absolute = path.resolve(target);
    if (this.extraFiles.has(absolute)) return false;
    if (this.dirs.some((dir) => isInside(absolute, dir))) return false;
    if (this.underPrunedDirectory(absolute)) return true;
    if (stats?.isFile()) return !this.isWatchedFile(absolute);
    return this.isPrunedDirectory(absolute);
  }
}
