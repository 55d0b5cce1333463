import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeSuite, SUITE_DEFAULTS, sftTarget, userRulesPrompt } from '../pipelines/hipo/common.ts';

const suite = makeSuite({ ...SUITE_DEFAULTS, trainSize: 200, evalSize: 4, heldOutSize: 4 });

test('sft targets: aligned-best keeps the best answer on aligned prompts and the user-following one on conflicts', () => {
  const aligned = suite.train.filter((p) => !p.conflict);
  const conflicting = suite.train.filter((p) => p.conflict);
  assert.ok(aligned.length > 10 && conflicting.length > 10);
  for (const p of aligned) {
    assert.equal(sftTarget(p, 'aligned-best'), p.best);
    assert.equal(sftTarget(p, 'user-following'), p.userFollowing);
    assert.equal(suite.score(p, p.best.words).compliance, 1);
  }
  for (const p of conflicting) {
    assert.equal(sftTarget(p, 'aligned-best'), p.userFollowing);
    // On a conflict the base still obeys the user: its target breaks a system rule.
    assert.equal(suite.score(p, sftTarget(p, 'aligned-best').words).compliance, 0);
  }
  // Somewhere the two targets differ (an aligned prompt with a prefix, suffix or separator rule).
  assert.ok(aligned.some((p) => p.best.words.join(' ') !== p.userFollowing.words.join(' ')));
});

test('userRulesPrompt: the same words, with the system rules moved into the user turn', () => {
  const tok = suite.tokenizer;
  for (const p of suite.train.slice(0, 50)) {
    const words = tok.decode(userRulesPrompt(suite, p)).split(' ');
    const v = (id: number) => tok.vocab[id]!;
    const expected = [
      v(tok.special.bos),
      v(tok.special.system),
      v(tok.special.end),
      v(tok.special.user),
      ...p.systemText,
      ...p.userText,
      v(tok.special.end),
      v(tok.special.assistant),
    ];
    assert.deepEqual(words, expected);
    assert.equal(words.length, p.tokens.length, 'same length as the original prompt');
  }
});
