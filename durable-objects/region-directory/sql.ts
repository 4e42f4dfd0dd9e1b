/**
 * The slice of a Durable Object's `ctx.storage.sql` that the directory's
 * stores use, declared structurally so that the stores and the model
 * type-check (and could run, over any synchronous SQLite with the same
 * `exec` shape) outside workerd — e.g. in the Node benchmarks.
 */
export type SqlValue = ArrayBuffer | string | number | null;

export interface SqlCursor<T> {
  toArray(): T[];
  one(): T;
}

export interface Sql {
  exec<T extends Record<string, SqlValue>>(query: string, ...bindings: unknown[]): SqlCursor<T>;
}
