/**
 * The per-layer attention chart (pipelines/report/attention.ts): the option holds each record's
 * per-layer shares as bars and its chance level as a dashed line; the PNG renders; records with
 * missing or mismatched layers are errors naming the record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerShareOption, renderLayerSharePng } from '../pipelines/report/index.ts';

const before = {
  'eval/attention/system_share': 0.3,
  'eval/attention/system_share/layer_0': 0.2,
  'eval/attention/system_share/layer_1': 0.4,
  'eval/attention/chance': 0.35,
};
const after = {
  'eval/attention/system_share': 0.5,
  'eval/attention/system_share/layer_1': 0.7,
  'eval/attention/system_share/layer_0': 0.3,
  'eval/attention/chance': 0.35,
};

test('attention chart: bars per layer for each record, chance as a dashed line, PNG rendered', () => {
  const option = layerShareOption([
    { label: 'base', metrics: before },
    { label: 'HIPO', metrics: after },
  ]) as { series: { name: string; data: number[]; markLine?: { data: { yAxis: number }[] } }[]; xAxis: { data: string[] } };
  assert.deepEqual(option.xAxis.data, ['0', '1']);
  assert.deepEqual(
    option.series.map((s) => [s.name, s.data]),
    [
      ['base', [0.2, 0.4]],
      ['HIPO', [0.3, 0.7]],
    ],
  );
  assert.equal(option.series[0]!.markLine!.data[0]!.yAxis, 0.35);
  const png = renderLayerSharePng([
    { label: 'base', metrics: before },
    { label: 'HIPO', metrics: after },
  ]);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.length > 5000);
});

test('attention chart: bad records are errors naming the record', () => {
  assert.throws(() => layerShareOption([{ label: 'empty', metrics: { 'reward/mean': 1 } }]), /record "empty" has no eval\/attention\/system_share\/layer_<i>/);
  const gap = { 'eval/attention/system_share/layer_0': 0.1, 'eval/attention/system_share/layer_2': 0.2 };
  assert.throws(() => layerShareOption([{ label: 'gap', metrics: gap }]), /record "gap" lacks a finite eval\/attention\/system_share\/layer_1/);
  const three = { ...before, 'eval/attention/system_share/layer_2': 0.1 };
  assert.throws(
    () =>
      layerShareOption([
        { label: 'a', metrics: before },
        { label: 'b', metrics: three },
      ]),
    /record "b" has 3 layers, "a" has 2/,
  );
});
