import http from 'node:http';

export interface LoadResult {
  ok: number;
  /** Requests that failed: a socket error, a reset, a timeout or a status other than 200. */
  failed: number;
  errors: string[];
}

export interface LoadOptions {
  port: number;
  host?: string;
  path?: string;
  connections: number;
  /** Reuse each connection (an HTTP/1.1 keep-alive client) or open a fresh one per request. */
  keepAlive: boolean;
  /** Upper bound on the load's duration, whatever else happens. */
  maxMs: number;
}

/**
 * A bounded load on loopback: `connections` clients sending requests back to back until `stop()`
 * or `maxMs`. Every failure is counted; none is retried.
 */
export function startLoad(options: LoadOptions): { stop: () => Promise<LoadResult>; result: LoadResult } {
  const result: LoadResult = { ok: 0, failed: 0, errors: [] };
  const agent = options.keepAlive
    ? new http.Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections })
    : undefined;
  const deadline = Date.now() + options.maxMs;
  let stopped = false;

  const once = () =>
    new Promise<void>((resolve) => {
      const request = http.get(
        {
          host: options.host ?? '127.0.0.1',
          port: options.port,
          path: options.path ?? '/',
          agent: agent ?? false,
          timeout: 10_000,
          headers: options.keepAlive ? {} : { connection: 'close' },
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode === 200) result.ok += 1;
            else {
              result.failed += 1;
              result.errors.push(`status ${response.statusCode}`);
            }
            resolve();
          });
          response.on('error', (error) => {
            result.failed += 1;
            result.errors.push(error.message);
            resolve();
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error('request timed out')));
      request.on('error', (error: NodeJS.ErrnoException) => {
        result.failed += 1;
        result.errors.push(error.code ?? error.message);
        resolve();
      });
    });

  const client = async () => {
    while (!stopped && Date.now() < deadline) await once();
  };
  const clients = Array.from({ length: options.connections }, client);
  return {
    result,
    stop: async () => {
      stopped = true;
      await Promise.all(clients);
      agent?.destroy();
      return result;
    },
  };
}
