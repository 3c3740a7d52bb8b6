import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseBackend, rankByAffinity, type BackendLoad } from '../src/serving/affinity.ts';

/**
 * Rendezvous hashing with bounded load, as the router and the remote backend use it: a key keeps
 * its backend, adding a backend moves about 1/n of the keys (all of them to the new one), a hot
 * key spills once its backend carries more than its share, and unhealthy backends are skipped.
 */
const keys = Array.from({ length: 2000 }, (_, i) => `tiny|adapter-${i}*1`);
const idle = (ids: string[]): BackendLoad[] =>
  ids.map((id) => ({ id, inFlight: 0, healthy: true }));

describe('adapter affinity (rendezvous hashing with bounded load)', () => {
  it('gives a key the same order every time, whatever order the backends are listed in', () => {
    const ids = ['http://a:1', 'http://b:1', 'http://c:1', 'http://d:1'];
    for (const key of keys.slice(0, 50)) {
      const order = rankByAffinity(key, ids);
      assert.deepEqual(rankByAffinity(key, [...ids].reverse()), order);
      assert.deepEqual([...order].sort(), [...ids].sort());
      assert.equal(chooseBackend(key, idle(ids))!.id, order[0]);
    }
  });

  it('spreads keys evenly and moves only about 1/n of them when a backend is added', () => {
    const four = ['n1', 'n2', 'n3', 'n4'];
    const five = [...four, 'n5'];
    const before = new Map(keys.map((k) => [k, rankByAffinity(k, four)[0]!]));
    const counts = new Map<string, number>();
    for (const owner of before.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    for (const id of four) {
      const share = counts.get(id)! / keys.length;
      assert.ok(share > 0.2 && share < 0.3, `${id} owns ${share}`);
    }
    let moved = 0;
    for (const key of keys) {
      const now = rankByAffinity(key, five)[0]!;
      if (now !== before.get(key)) {
        moved++;
        // A key only ever moves to the new backend, never between the old ones.
        assert.equal(now, 'n5');
      }
    }
    const fraction = moved / keys.length;
    assert.ok(fraction > 0.15 && fraction < 0.25, `moved ${fraction}, expected about 1/5`);
  });

  it('spills a key to its next backend once its own carries more than its bounded share', () => {
    const ids = ['n1', 'n2', 'n3'];
    const key = keys[7]!;
    const [first, second] = rankByAffinity(key, ids);
    const loads = idle(ids);
    const load = (id: string) => loads.find((b) => b.id === id)!;
    for (const b of loads) b.inFlight = 1;
    // Within the bound (cap = ceil((3 + 1) / 3 × 1.25) = 2): it stays.
    assert.equal(chooseBackend(key, loads)!.id, first);
    // Its backend holds far more than the others (cap = ceil(7 / 3 × 1.25) = 3): the key goes
    // to its second choice, not a random one, so a hot adapter warms exactly one more backend.
    load(first!).inFlight = 4;
    assert.equal(chooseBackend(key, loads)!.id, second);
    // A larger load factor tolerates more imbalance before spilling.
    assert.equal(chooseBackend(key, loads, { loadFactor: 3 })!.id, first);
  });

  it('skips unhealthy backends, and uses them only when none is healthy', () => {
    const ids = ['n1', 'n2', 'n3'];
    const key = keys[11]!;
    const order = rankByAffinity(key, ids);
    const loads = idle(ids);
    loads.find((b) => b.id === order[0])!.healthy = false;
    assert.equal(chooseBackend(key, loads)!.id, order[1]);
    for (const b of loads) b.healthy = false;
    assert.equal(chooseBackend(key, loads)!.id, order[0]);
    assert.equal(chooseBackend(key, []), undefined);
  });
});
