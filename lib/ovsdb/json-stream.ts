// OVSDB's JSON-RPC puts JSON values back to back on the stream with no delimiter (RFC 7047 §4),
// so the reader has to find where each top-level value ends. This splitter scans bytes once,
// keeping its state across chunks; UTF-8 continuation bytes are >= 0x80 and can never be
// mistaken for the ASCII brackets, quotes and backslashes it looks for.
import { OvsdbError } from './errors.js';

const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d, QUOTE = 0x22, BACKSLASH = 0x5c;

/** Largest single value accepted by default (a large switch's full snapshot is a few MB). */
export const MAX_VALUE_BYTES = 64 << 20;
/**
 * Deepest nesting accepted by default. OVSDB messages nest about 8 levels (a monitor update's
 * map column); a peer sending thousands of levels would only make recursive code overflow.
 */
export const MAX_DEPTH = 128;

/** Thrown when the peer sends something that is not a stream of JSON objects/arrays: an OvsdbError('protocol'). */
export class JsonStreamError extends OvsdbError {
  constructor(msg: string) {
    super('ovsdb', 'protocol', msg);
    this.name = 'JsonStreamError';
  }
}

export class JsonSplitter {
  private held: Buffer[] = [];   // earlier pieces of the value being read
  private heldBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private broken?: JsonStreamError;

  /**
   * `maxBytes` bounds one value, so a broken peer cannot grow the buffer forever; `maxDepth`
   * bounds its nesting. After an error the splitter stays broken (the stream has no resync point).
   */
  constructor(private readonly maxBytes = MAX_VALUE_BYTES, private readonly maxDepth = MAX_DEPTH) {}

  /** Feeds bytes and returns every complete top-level value they finish, parsed. */
  push(chunk: Uint8Array): unknown[] {
    if (this.broken) throw this.broken;
    try {
      return this.scan(chunk);
    } catch (e) {
      this.broken = e instanceof JsonStreamError ? e : new JsonStreamError(`bad JSON stream: ${(e as Error)?.message}`);
      this.held = [];
      this.heldBytes = 0;
      throw this.broken;
    }
  }

  private scan(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    let begin = this.depth > 0 ? 0 : -1;   // where the current value starts in this chunk
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== LBRACE && c !== LBRACKET) {
          throw new JsonStreamError(`expected a JSON object or array, got byte 0x${c.toString(16)}`);
        }
        begin = i;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === LBRACE || c === LBRACKET) {
        if (++this.depth > this.maxDepth) throw new JsonStreamError(`a JSON value nests deeper than ${this.maxDepth} levels`);
      } else if (c === RBRACE || c === RBRACKET) {
        if (--this.depth === 0) {
          const piece = chunk.subarray(begin, i + 1);
          if (this.heldBytes + piece.length > this.maxBytes) throw new JsonStreamError(`a JSON value exceeds ${this.maxBytes} bytes`);
          const whole = this.held.length ? Buffer.concat([...this.held, piece]) : Buffer.from(piece.buffer, piece.byteOffset, piece.length);
          this.held = [];
          this.heldBytes = 0;
          begin = -1;
          try {
            out.push(JSON.parse(whole.toString('utf8')));
          } catch (e) {
            throw new JsonStreamError(`malformed JSON value: ${(e as Error).message}`);
          }
        }
      }
    }
    if (this.depth > 0) {
      // Copy: the caller may reuse its buffer.
      const piece = Buffer.from(chunk.subarray(begin));
      this.held.push(piece);
      this.heldBytes += piece.length;
      if (this.heldBytes > this.maxBytes) throw new JsonStreamError(`a JSON value exceeds ${this.maxBytes} bytes`);
    }
    return out;
  }

  /** True when bytes of an unfinished value are buffered. */
  get pending(): boolean {
    return this.depth > 0;
  }
}
