/** What a Map or a WeakMap offers for holding a value built once per key. */
interface Memo<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
}

/** The value `memo` holds for `key`, built by `make` (and held) the first time it is asked for. */
export function memoized<K, V>(memo: Memo<K, V>, key: K, make: () => V): V {
  let value = memo.get(key);
  if (value === undefined) {
    value = make();
    memo.set(key, value);
  }
  return value;
}
