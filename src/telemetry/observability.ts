import type { Arbiter } from '../supervisor/arbiter.js';
import type { LogOutput } from './logger.js';
import type { CorralConfig } from '../config/resolve.js';
import { RestartLedger } from '../supervisor/restart-ledger.js';
import type { ForkServerSource } from '../worker/fork-launcher.js';

export interface Observability {
  /** Stops the endpoints and the control socket; call it once the arbiter has stopped. */
  close(): Promise<void>;
}

/** Whether the control socket's path was derived from --pid rather than given. */
function controlSocketDerived(config: Pick<CorralConfig, 'settings'>): boolean {
  return (config.settings.control_socket?.value ?? null) === null;
}

/** Whether corral should receive traffic: /readyz. */
export function isReady(arbiter: Pick<Arbiter, 'stopping' | 'liveWorkers'>): boolean {
  return !arbiter.stopping && arbiter.liveWorkers().some((worker) => worker.state === 'ready');
}

/**
 * Starts what watches and steers a running corral: the metrics and health endpoints
 * (--metrics-bind) and the control socket. `reload` is what SIGHUP does.
 */
export async function startObservability(
  config: Pick<CorralConfig, 'metricsBind' | 'controlSocket' | 'settings'>,
  arbiter: Arbiter,
  output: LogOutput,
  reload: () => void,
  /** Waits for the first resource samples of workers that have just become ready. */
  samples?: { settled(): Promise<void> },
  /** The live fork servers, for `corral status` and the metrics. */
  forkServers?: ForkServerSource,
): Promise<Observability> {
  const log = output.logger;
  const ledger = new RestartLedger(arbiter);
  const closers: (() => void | Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };

  try {
    if (config.metricsBind) {
      // prom-client loads only when metrics are on: it costs the master about 10 MiB.
      const { CorralMetrics } = await import('./metrics.js');
      const metrics = new CorralMetrics(arbiter, ledger, output, forkServers);
      const { HttpEndpoints } = await import('./http-endpoints.js');
      const endpoints = await HttpEndpoints.listen(config.metricsBind, {
        metrics: async () => {
          // A scrape just after a worker's ready report gets its CPU and memory rows too.
          await samples?.settled();
          return { contentType: metrics.contentType, body: await metrics.render() };
        },
        ready: () => isReady(arbiter),
      }, log);
      closers.push(() => endpoints.close());
      const { host, family } = config.metricsBind;
      const where = family === 6 ? `[${host}]:${endpoints.port}` : `${host}:${endpoints.port}`;
      log.info({ metrics: `http://${where}/metrics` }, `metrics and health endpoints on http://${where} (/metrics, /healthz, /readyz)`);
    }
    if (config.controlSocket) {
      const [{ ControlServer, ControlSocketUnavailable }, { collectStatus }] = await Promise.all([import('../control/server.js'), import('../control/status.js')]);
      const path = config.controlSocket;
      try {
        const control = await ControlServer.listen(
          path,
          {
            status: () => collectStatus(arbiter, ledger, Date.now(), forkServers && (() => forkServers.status())),
            reload,
            scale: (workers) => arbiter.requestScaleTo(workers),
            stop: (mode) => arbiter.stop(mode),
          },
          log,
        );
        closers.push(() => control.close());
        log.info({ controlSocket: control.path }, `control socket at ${control.path}`);
      } catch (error) {
        // The path beside the pid file was not asked for: in a shared directory another program may
        // hold it, which must not keep corral from serving. A path given with --control-socket was.
        if (!(error instanceof ControlSocketUnavailable) || error.heldByCorral || !controlSocketDerived(config)) throw error;
        log.warn(
          { controlSocket: path, reason: error.reason },
          `no control socket: at ${path} (beside the --pid file) ${error.reason}; corral runs without one, so corral status/reload/scale/stop cannot reach it; pass --control-socket PATH to put it elsewhere`,
        );
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { close };
}
