import { describe, expect, it } from 'vitest';
import { pathPatternMatcher, WatchRules } from '../../../src/reload/matcher.js';

const ROOT = '/project';

function rules(options: { includes?: string[]; excludes?: string[]; extraFiles?: string[]; dirs?: string[]; directories?: string[] } = {}) {
  const directories = new Set(options.directories ?? []);
  return new WatchRules({
    dirs: options.dirs ?? [ROOT],
    includes: options.includes ?? [],
    excludes: options.excludes ?? [],
    extraFiles: options.extraFiles ?? [],
    isDirectory: (target) => directories.has(target),
  });
}

const file = { isFile: () => true, isDirectory: () => false };
const dir = { isFile: () => false, isDirectory: () => true };

describe('pathPatternMatcher (PurePath.match semantics)', () => {
  it('matches a one-segment pattern against the file name only', () => {
    const match = pathPatternMatcher('*.py');
    expect(match('/project/app/main.py')).toBe(true);
    expect(match('/project/app/main.pyc')).toBe(false);
    expect(match('/project/app.py/readme.txt')).toBe(false);
  });

  it('matches a multi-segment pattern against the last segments, * never crossing a slash', () => {
    const match = pathPatternMatcher('templates/*.html');
    expect(match('/project/app/templates/page.html')).toBe(true);
    expect(match('/project/templates/sub/page.html')).toBe(false);
    expect(match('page.html')).toBe(false);
  });

  it('treats leading dots as ordinary characters and supports classes', () => {
    expect(pathPatternMatcher('.*')('/project/.env')).toBe(true);
    expect(pathPatternMatcher('*.py[cod]')('/project/x.pyo')).toBe(true);
    expect(pathPatternMatcher('*.py[cod]')('/project/x.pyx')).toBe(false);
    expect(pathPatternMatcher('~*')('/project/~main.py')).toBe(true);
  });

  it('matches an absolute pattern against the whole path', () => {
    const match = pathPatternMatcher('/project/*.py');
    expect(match('/project/a.py')).toBe(true);
    expect(match('/project/sub/a.py')).toBe(false);
  });
});

describe('WatchRules', () => {
  it('watches *.py by default and skips uvicorn’s default excludes', () => {
    const r = rules();
    expect(r.isWatchedFile('/project/app/main.py')).toBe(true);
    expect(r.isWatchedFile('/project/app/main.pyc')).toBe(false);
    expect(r.isWatchedFile('/project/app/.hidden.py')).toBe(false);
    expect(r.isWatchedFile('/project/app/~backup.py')).toBe(false);
    expect(r.isWatchedFile('/project/app/notes.txt')).toBe(false);
    expect(r.isWatchedFile('/elsewhere/main.py')).toBe(false);
  });

  it('never watches inside virtualenvs, caches, .git, node_modules or hidden directories', () => {
    const r = rules();
    for (const inside of [
      '/project/.venv/lib/python3.12/site-packages/fastapi/__init__.py',
      '/project/venv/lib/x.py',
      '/project/app/__pycache__/main.py',
      '/project/.git/hooks/x.py',
      '/project/node_modules/pkg/x.py',
      '/project/lib/site-packages/x.py',
      '/project/.mypy_cache/x.py',
    ]) {
      expect(r.isWatchedFile(inside), inside).toBe(false);
      expect(r.isInWatchedTree(inside), inside).toBe(false);
      expect(r.ignored(inside, file), inside).toBe(true);
    }
    expect(r.ignored('/project/.venv', dir)).toBe(true);
    expect(r.ignored('/project/__pycache__')).toBe(true);
    expect(r.ignored('/project/app', dir)).toBe(false);
    expect(r.ignored('/project/app')).toBe(false);
    expect(r.ignored(ROOT, dir)).toBe(false);
  });

  it('adds includes, and a user include drops the default exclude it names', () => {
    const r = rules({ includes: ['*.html', '.*'] });
    expect(r.isWatchedFile('/project/templates/page.html')).toBe(true);
    expect(r.isWatchedFile('/project/.env')).toBe(true);
    expect(r.excludes).not.toContain('.*');
  });

  it('a user exclude drops the default include it names', () => {
    const r = rules({ excludes: ['*.py'], includes: ['*.txt'] });
    expect(r.includes).toEqual(['*.txt']);
    expect(r.isWatchedFile('/project/a.py')).toBe(false);
    expect(r.isWatchedFile('/project/a.txt')).toBe(true);
  });

  it('excludes by pattern, and skips an excluded path that is a directory', () => {
    const r = rules({ excludes: ['*_test.py', '/project/generated'], directories: ['/project/generated'] });
    expect(r.isWatchedFile('/project/app/main_test.py')).toBe(false);
    expect(r.isWatchedFile('/project/generated/models.py')).toBe(false);
    expect(r.ignored('/project/generated', dir)).toBe(true);
    expect(r.isWatchedFile('/project/app/main.py')).toBe(true);
    expect(r.excludedDirs).toEqual(['/project/generated']);
  });

  it('watches extra files whatever the patterns, even outside the directories', () => {
    const r = rules({ extraFiles: ['/project/.env', '/etc/app/settings.toml'] });
    expect(r.isWatchedFile('/project/.env')).toBe(true);
    expect(r.isWatchedFile('/etc/app/settings.toml')).toBe(true);
    expect(r.ignored('/project/.env')).toBe(false);
    expect(r.ignored('/etc/app/settings.toml', file)).toBe(false);
  });

  it('leaves files of unknown type to the event filter, unless their name rules them out', () => {
    const r = rules();
    expect(r.ignored('/project/app/readme.txt')).toBe(false);
    expect(r.ignored('/project/app/readme.txt', file)).toBe(true);
    expect(r.ignored('/project/app/main.py', file)).toBe(false);
  });

  it('watches several directories', () => {
    const r = rules({ dirs: ['/project/src', '/project/lib'] });
    expect(r.isWatchedFile('/project/src/a.py')).toBe(true);
    expect(r.isWatchedFile('/project/lib/b.py')).toBe(true);
    expect(r.isWatchedFile('/project/tests/c.py')).toBe(false);
  });
});
