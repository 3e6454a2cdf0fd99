import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { capConnections } from '../platform/connection-cap.js';
import { CorralError, ExitCode } from '../exit-codes.js';
import type { TcpAddress } from '../config/telemetry-options.js';

export interface EndpointSources {
  /** Prometheus text, with its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Whether corral should get traffic: a worker is ready and corral is not shutting down. */
  ready(): boolean;
}

/**
 * The HTTP endpoints of `--metrics-bind`: /metrics (Prometheus), /healthz (the master answers) and
 * /readyz (200 once a worker is ready, 503 while starting and while shutting down), for
 * Kubernetes probes and Docker HEALTHCHECK. It serves on its own port, never the app's.
 */
/**
 * Bounds on what clients may hold: probes and scrapers need one short request at a time, and every
 * connection costs the master a file descriptor that it needs to start workers.
 */
export const ENDPOINT_LIMITS = {
  maxConnections: 64,
  /** A connection silent this long is closed: one that never sends a request, or stops reading. */
  idleTimeoutMs: 10_000,
  /** The request's headers must arrive within this (a client trickling bytes keeps it from being idle). */
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  /** A probe or scraper that holds a connection open must not delay corral's exit. */
  keepAliveTimeoutMs: 5_000,
} as const;

export class HttpEndpoints {
  private constructor(private readonly server: http.Server) {}

  static async listen(address: TcpAddress, sources: EndpointSources, log?: Logger): Promise<HttpEndpoints> {
    const server = http.createServer(
      {
        headersTimeout: ENDPOINT_LIMITS.headersTimeoutMs,
        requestTimeout: ENDPOINT_LIMITS.requestTimeoutMs,
        // Node checks the two timeouts above this often (30 s by default); set later, they are not checked.
        connectionsCheckingInterval: 1_000,
      },
      (request, response) => void respond(request, response, sources),
    );
    server.keepAliveTimeout = ENDPOINT_LIMITS.keepAliveTimeoutMs;
    server.setTimeout(ENDPOINT_LIMITS.idleTimeoutMs);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        const where = address.family === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
        reject(new CorralError(`--metrics-bind ${where}: cannot listen: ${error.code ?? error.message}`, ExitCode.runtime));
      };
      server.once('error', onError);
      server.listen({ host: address.host, port: address.port, ipv6Only: address.family === 6 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    capConnections(server, { what: 'metrics endpoint', maxConnections: ENDPOINT_LIMITS.maxConnections, idleSeconds: ENDPOINT_LIMITS.idleTimeoutMs / 1000 }, log);
    return new HttpEndpoints(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function respond(request: http.IncomingMessage, response: http.ServerResponse, sources: EndpointSources): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  const send = (status: number, body: string, contentType = 'text/plain; charset=utf-8') => {
    response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(405, 'method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics':
      try {
        const { contentType, body } = await sources.metrics();
        send(200, body, contentType);
      } catch (error) {
        send(500, `metrics failed: ${(error as Error).message}\n`);
      }
      return;
    case '/healthz':
      send(200, 'ok\n');
      return;
    case '/readyz':
      if (sources.ready()) send(200, 'ready\n');
      else send(503, 'not ready\n');
      return;
    default:
      send(404, 'not found: try /metrics, /healthz or /readyz\n');
  }
}
