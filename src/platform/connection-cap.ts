import type net from 'node:net';
import type { Logger } from 'pino';

/** How often, at most, a capped server says that it turns connections away or fails to accept. */
const NOTICE_INTERVAL_MS = 60_000;

export interface ConnectionCap {
  /** What the server is, for the log: "metrics endpoint", "control socket". */
  what: string;
  maxConnections: number;
  /** Said in the log line: when held connections are closed. */
  idleSeconds: number;
}

/**
 * Caps the connections a server of the master holds, so idle or slow clients cannot use up the
 * master's file descriptors (which it needs to start workers). A connection over the cap is closed
 * at once; an accept error (EMFILE) after listening is logged instead of thrown. Both are logged at
 * most once a minute, with how many there were since the last line.
 */
export function capConnections(server: net.Server, cap: ConnectionCap, log: Logger | undefined): void {
  server.maxConnections = cap.maxConnections;
  let lastNotice = 0;
  let dropped = 0;
  let failed = 0;
  let lastError = '';
  const notice = () => {
    const now = Date.now();
    if (now - lastNotice < NOTICE_INTERVAL_MS) return;
    lastNotice = now;
    if (dropped > 0) {
      log?.warn(
        { maxConnections: cap.maxConnections, dropped },
        `${cap.what}: connections refused, ${cap.maxConnections} are open (the cap); idle ones are closed after ${cap.idleSeconds} s`,
      );
    }
    if (failed > 0) log?.warn({ failed }, `${cap.what}: cannot accept connections: ${lastError}`);
    dropped = 0;
    failed = 0;
  };
  server.on('drop', () => {
    dropped += 1;
    notice();
  });
  // Without a listener, an accept error after listening would be thrown: the master would die.
  server.on('error', (error: NodeJS.ErrnoException) => {
    failed += 1;
    lastError = error.code ?? error.message;
    notice();
  });
}
