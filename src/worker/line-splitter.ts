/**
 * Splits a worker's output into lines with bounded memory. A worker is the app's code: one line may be
 * hundreds of megabytes, or never end. A line keeps at most `limit` characters; the rest of it is
 * dropped as it arrives and only counted, so nothing is ever buffered whole.
 */

/** What one line of a worker's stdout or stderr keeps (64 KiB of ASCII); the rest is counted in a marker. */
export const TEXT_LINE_LIMIT = 64 * 1024;
/**
 * What one runtime record keeps. The runtime caps the app-controlled fields of its records well below
 * this, so only a pathological record (a URL of megabytes, say) reaches it.
 */
export const RECORD_LINE_LIMIT = 1024 * 1024;
/** What one control message keeps: the modules report of a large app is the biggest, about a megabyte. */
export const CONTROL_LINE_LIMIT = 16 * 1024 * 1024;
/** How long the start of a line waits for its newline before what has arrived is logged. */
export const PARTIAL_LINE_DELAY_MS = 150;

export interface LineSplitterOptions {
  /** The most characters (UTF-16 code units) one line keeps. */
  limit: number;
  /** Emit a line without its newline this long after its first character arrived; unset: wait for it. */
  partialDelayMs?: number;
  /** One line, without its newline; `droppedBytes` is how much of it (UTF-8) went past the limit. */
  onLine(line: string, droppedBytes: number): void;
}

/** The visible form of a truncated line. */
export function markTruncated(line: string, droppedBytes: number): string {
  return droppedBytes > 0 ? `${line}… [truncated ${droppedBytes} bytes]` : line;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

export class LineSplitter {
  /** The current line so far: at most `limit` characters. */
  private pending = '';
  /** Bytes of the current line dropped past the limit. */
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The previous line went out on the timer, without its newline: that newline ends it, not a new empty line. */
  private continued = false;

  constructor(private readonly options: LineSplitterOptions) {}

  /** Feeds decoded text, in whatever pieces the stream delivers it. */
  push(text: string): void {
    const { limit } = this.options;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      if (this.pending === '' && this.dropped === 0 && end - start <= limit) {
        // The common case, a whole line within one piece: no copy.
        if (!(this.continued && end === start)) this.options.onLine(stripReturn(text.slice(start, end)), 0);
        this.continued = false;
      } else {
        this.append(text, start, end);
        this.emit();
      }
      start = end + 1;
    }
    if (start < text.length) {
      this.append(text, start, text.length);
      this.continued = false;
      if (this.timer === undefined && this.options.partialDelayMs !== undefined) {
        this.timer = setTimeout(() => this.flushPartial(), this.options.partialDelayMs);
        // Output waiting for its newline never keeps the master alive.
        this.timer.unref();
      }
    }
  }

  /** The stream has ended: a last line without its newline still counts. */
  end(): void {
    if (this.pending !== '' || this.dropped > 0) this.emit();
  }

  private flushPartial(): void {
    this.timer = undefined;
    if (this.pending === '' && this.dropped === 0) return;
    this.emit();
    this.continued = true;
  }

  private append(text: string, from: number, to: number): void {
    // Once a line has lost its middle, nothing later joins it: the kept text stays one piece.
    const room = this.dropped > 0 ? 0 : this.options.limit - this.pending.length;
    if (to - from <= room) {
      this.pending += text.slice(from, to);
      return;
    }
    let cut = from + room;
    // A character outside the BMP is two code units: keep both or neither.
    if (cut > from && isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1;
    this.pending += text.slice(from, cut);
    this.dropped += Buffer.byteLength(text.slice(cut, to));
  }

  private emit(): void {
    const line = this.dropped > 0 ? this.pending : stripReturn(this.pending);
    const dropped = this.dropped;
    this.pending = '';
    this.dropped = 0;
    this.continued = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.options.onLine(line, dropped);
  }
}

/** A CRLF line (a Windows-minded library) loses its CR, as Node's readline did. */
function stripReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
