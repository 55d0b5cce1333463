/**
 * TensorBoard event files: a metrics sink that writes one scalar summary per metric per iteration,
 * readable by TensorBoard (`tensorboard --logdir runs/`).
 *
 * Format (TensorFlow's record I/O of `Event` protocol buffers):
 *   record = uint64 length (LE) · uint32 masked_crc32c(length bytes) · data · uint32 masked_crc32c(data)
 *   masked_crc(x) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8        (CRC-32C, Castagnoli)
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
 * The first record is the file-version event `brain.Event:2`. Non-finite values are skipped.
 *
 * ```ts
 * const tb = tensorboardSink('runs/x/tensorboard');
 * batches$.pipe(metrics({ sinks: [tb] }));
 * ```
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli) of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Minimal protobuf writer: just the wire types an Event needs. */
class Proto {
  private parts: number[] = [];
  private varint(v: number): void {
    // Non-negative integers below 2^53.
    while (v >= 0x80) {
      this.parts.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.parts.push(v);
  }
  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
    return this;
  }
  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    this.parts.push(...b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One framed record. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** The bytes of an Event holding scalar summaries. */
export function scalarEvent(step: number, wallTime: number, scalars: Record<string, number>): Uint8Array {
  const summary = new Proto();
  for (const [tag, v] of Object.entries(scalars)) {
    if (!Number.isFinite(v)) continue;
    summary.bytes(1, new Proto().string(1, tag).float(2, v).finish());
  }
  return new Proto().double(1, wallTime).int(2, step).bytes(5, summary.finish()).finish();
}

export interface TensorboardSink {
  readonly path: string;
  write(record: { iteration: number } & Record<string, number>): void;
  close(): void;
}

/** A metrics sink writing `events.out.tfevents.<time>.<host>` into `dir`. */
export function tensorboardSink(dir: string, now: () => number = () => Date.now() / 1000): TensorboardSink {
  mkdirSync(dir, { recursive: true });
  const t0 = now();
  const path = join(dir, `events.out.tfevents.${Math.floor(t0)}.${hostname()}`);
  writeFileSync(path, tfRecord(new Proto().double(1, t0).string(3, 'brain.Event:2').finish()));
  return {
    path,
    write: ({ iteration, ...metrics }) => {
      appendFileSync(path, tfRecord(scalarEvent(iteration, now(), metrics)));
    },
    close: () => {},
  };
}
