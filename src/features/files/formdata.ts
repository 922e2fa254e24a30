/**
 * A small streaming multipart/form-data reader: finds the `file` field and hands its bytes on as
 * a stream, so a large upload is never held in memory (`Request.formData()` would buffer it).
 */
import { AppError } from "../../errors";
import { chunksOf } from "./storage";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Non-file fields and part headers are small; anything larger is refused. */
const MAX_FIELD = 64 * 1024;
const MAX_HEADERS = 16 * 1024;

const malformed = (why: string) => new AppError("bad_request", `Malformed multipart/form-data body: ${why}.`);

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  for (let i = hay.indexOf(first); i !== -1 && i + needle.length <= hay.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

class Scanner {
  /** Starts with CRLF so the first boundary is found like every later delimiter. */
  private buf: Uint8Array = enc.encode("\r\n");
  private eof = false;
  constructor(private readonly chunks: AsyncGenerator<Uint8Array>) {}

  private async more(): Promise<boolean> {
    if (this.eof) return false;
    const next = await this.chunks.next();
    if (next.done) {
      this.eof = true;
      return false;
    }
    const joined = new Uint8Array(this.buf.byteLength + next.value.byteLength);
    joined.set(this.buf);
    joined.set(next.value, this.buf.byteLength);
    this.buf = joined;
    return true;
  }

  async take(n: number): Promise<Uint8Array> {
    while (this.buf.byteLength < n) if (!(await this.more())) throw malformed("truncated");
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The bytes before `delim` (consumed with it), at most `max` of them. */
  async until(delim: Uint8Array, max: number): Promise<Uint8Array> {
    for (;;) {
      const i = indexOf(this.buf, delim);
      if (i >= 0) {
        const out = this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + delim.byteLength);
        return out;
      }
      if (this.buf.byteLength > max + delim.byteLength) throw malformed("a field or header block is too large");
      if (!(await this.more())) throw malformed("truncated");
    }
  }

  /** A stream of the bytes before `delim`; keeps back only what could be the start of `delim`. */
  streamUntil(delim: Uint8Array): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        for (;;) {
          const i = indexOf(this.buf, delim);
          if (i >= 0) {
            if (i > 0) ctl.enqueue(this.buf.subarray(0, i));
            this.buf = this.buf.subarray(i + delim.byteLength);
            ctl.close();
            return;
          }
          const safe = this.buf.byteLength - (delim.byteLength - 1);
          if (safe > 0) {
            ctl.enqueue(this.buf.subarray(0, safe));
            this.buf = this.buf.subarray(safe);
            return;
          }
          if (!(await this.more())) throw malformed("the file field is truncated");
        }
      },
      cancel: async () => {
        await this.chunks.return(undefined);
      },
    });
  }
}

/** The boundary parameter of a multipart/form-data Content-Type, or null if it is not one. */
export function formBoundary(contentType: string | null | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function headerValue(block: string, name: string): string | null {
  for (const line of block.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === name) return line.slice(i + 1).trim();
  }
  return null;
}

function dispositionParam(disposition: string, name: string): string | null {
  const star = new RegExp(`;\\s*${name}\\*=(?:UTF-8|utf-8)''([^;]*)`).exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1]!);
    } catch {
      return null;
    }
  }
  const m = new RegExp(`;\\s*${name}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${name}=([^;\\s]*)`).exec(disposition);
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? null);
}

export interface FormFile {
  filename: string | null;
  contentType: string | null;
  stream: ReadableStream<Uint8Array>;
}

/**
 * Reads parts up to the field named `field` and returns its bytes as a stream. Fields before it
 * are skipped (each at most 64 KiB); whatever follows it is not read.
 */
export async function formDataFile(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  field = "file",
): Promise<FormFile> {
  const s = new Scanner(chunksOf(body));
  const delim = enc.encode(`\r\n--${boundary}`);
  await s.until(delim, MAX_FIELD); // preamble
  for (;;) {
    const after = dec.decode(await s.take(2));
    if (after === "--")
      throw new AppError("validation_failed", `The form has no "${field}" field.`, {
        errors: [{ path: field, message: "missing" }],
      });
    if (after !== "\r\n") throw malformed("bad boundary line");
    const headers = dec.decode(await s.until(enc.encode("\r\n\r\n"), MAX_HEADERS));
    const disposition = headerValue(headers, "content-disposition") ?? "";
    if (!/^form-data\b/i.test(disposition)) throw malformed("a part without Content-Disposition: form-data");
    if (dispositionParam(disposition, "name") === field) {
      return {
        filename: dispositionParam(disposition, "filename"),
        contentType: headerValue(headers, "content-type"),
        stream: s.streamUntil(delim),
      };
    }
    await s.until(delim, MAX_FIELD);
  }
}
