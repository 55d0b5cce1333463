import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, maskedCrc32c, tensorboardSink } from '../lib/io/tensorboard.ts';

test('CRC-32C matches the standard check value and RFC 3720 vectors', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(maskedCrc32c(new Uint8Array(0)), ((((0 >>> 15) | (0 << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

/** An independent reader: record framing, CRCs, and the protobuf fields of Event/Summary/Value. */
function readEvents(path: string): { wall: number; step?: number; version?: string; scalars: Record<string, number> }[] {
  const b = readFileSync(path);
  const out = [];
  let o = 0;
  while (o < b.length) {
    const len = Number(b.readBigUInt64LE(o));
    assert.equal(b.readUInt32LE(o + 8), maskedCrc32c(b.subarray(o, o + 8)), 'length crc');
    const data = b.subarray(o + 12, o + 12 + len);
    assert.equal(b.readUInt32LE(o + 12 + len), maskedCrc32c(data), 'data crc');
    o += 16 + len;
    const ev: { wall: number; step?: number; version?: string; scalars: Record<string, number> } = { wall: 0, scalars: {} };
    const fields = (buf: Buffer, f: (field: number, wire: number, val: number | Buffer) => void) => {
      let p = 0;
      const varint = () => {
        let v = 0,
          m = 1;
        for (;;) {
          const x = buf[p++]!;
          v += (x & 0x7f) * m;
          m *= 128;
          if (x < 0x80) return v;
        }
      };
      while (p < buf.length) {
        const key = varint();
        const field = Math.floor(key / 8),
          wire = key % 8;
        if (wire === 0) f(field, wire, varint());
        else if (wire === 1) {
          f(field, wire, buf.readDoubleLE(p));
          p += 8;
        } else if (wire === 5) {
          f(field, wire, buf.readFloatLE(p));
          p += 4;
        } else if (wire === 2) {
          const n = varint();
          f(field, wire, buf.subarray(p, p + n));
          p += n;
        } else throw new Error(`wire type ${wire}`);
      }
    };
    fields(data, (field, _w, v) => {
      if (field === 1) ev.wall = v as number;
      if (field === 2) ev.step = v as number;
      if (field === 3) ev.version = (v as Buffer).toString();
      if (field === 5)
        fields(v as Buffer, (_f, _w2, value) => {
          let tag = '',
            val = NaN;
          fields(value as Buffer, (vf, _w3, x) => {
            if (vf === 1) tag = (x as Buffer).toString();
            if (vf === 2) val = x as number;
          });
          ev.scalars[tag] = val;
        });
    });
    out.push(ev);
  }
  return out;
}

test('tensorboardSink writes framed Event records with scalar summaries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-tb-'));
  let t = 1000.5;
  const sink = tensorboardSink(dir, () => (t += 1));
  sink.write({ iteration: 0, 'reward/mean': 21.5, lambda: 0 });
  sink.write({ iteration: 1, 'reward/mean': 300, lambda: 0.25, bad: Number.NaN });
  sink.close();
  const events = readEvents(sink.path);
  assert.equal(events.length, 3);
  assert.equal(events[0]!.version, 'brain.Event:2');
  assert.deepEqual(events[1]!.scalars, { 'reward/mean': 21.5, lambda: 0 });
  assert.equal(events[2]!.step, 1);
  assert.deepEqual(events[2]!.scalars, { 'reward/mean': 300, lambda: 0.25 });
  assert.equal(events[2]!.wall, 1003.5);
});
