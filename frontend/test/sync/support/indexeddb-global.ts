// Dexie's liveQuery does nothing unless an indexedDB existed when Dexie was loaded (its
// `domDeps` gate), as it does in a browser. Node has none: install fake-indexeddb's global
// first. Each simulated device still gets its own IDBFactory through the environment.
import 'fake-indexeddb/auto';
