// Named selections of rows (`--preset NAME`): which scenarios, servers and apps, and per-scenario
// settings (worker counts, rounds, the apps each scenario runs on), so that the rows one piece of
// work must show come from one bounded run. Options given with the preset (--only, --servers,
// --apps, --workers, --rounds) override it.
import type { ScenarioId } from './report.js';
import type { Settings } from './scenarios/common.js';
import type { ServerName } from './servers.js';

export interface Preset {
  description: string;
  only: ScenarioId[];
  servers: ServerName[];
  apps: Array<'hello' | 'fastapi'>;
  settings: Partial<Settings>;
  /** what the run takes on 2 cores, as measured or estimated (shown by --help) */
  duration: string;
}

export const PRESETS: Record<string, Preset> = {
  // issue 12's "Must show" rows, corral with its fork server side by side with corral (spawn)
  'fork-server': {
    description:
      "the fork server's rows: throughput and p99 (2/4 workers, access log off/on), launch 2/8/32 workers, total PSS (FastAPI 4/8/32), kill -9, HUP of 8 and 32 FastAPI workers, FastAPI reload",
    only: ['throughput', 'launch', 'memory-pss', 'kill', 'hup', 'reload'],
    servers: ['uvicorn', 'corral', 'corral-spawn', 'gunicorn', 'granian'],
    apps: ['hello', 'fastapi'],
    settings: {
      launchWorkers: [2, 8, 32],
      launchRepeats: 3,
      pssWorkers: [4, 8, 32],
      pssRounds: 1,
      pssLoadS: 5,
      killWorkers: 2,
      killRepeats: 3,
      hupWorkers: [8, 32],
      hupRounds: () => 1,
      // uvicorn (one by one, > 510 s for 32 FastAPI workers) and granian (3.5 s per worker) are
      // shown as "> 60 s" rather than measured to the end: the goal compares corral with gunicorn
      hupBoundS: 60,
      scenarioApps: { 'memory-pss': ['fastapi'], hup: ['fastapi'], reload: ['fastapi'] },
    },
    duration: 'about 45 min on a quiet 2-core machine (20 without throughput: --only launch,memory-pss,kill,hup,reload), more on a busy one',
  },
};

export const PRESET_NAMES = Object.keys(PRESETS);
