/**
 * The environment of a Sluice child process: this one's without `DATABASE_URL` (the suite's
 * PostgreSQL, which would take the child off the SQLite file its test reads), with `env` laid
 * over; a test that wants PostgreSQL passes its own `DATABASE_URL`.
 */
export function childEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  delete inherited.DATABASE_URL;
  return { ...inherited, ...env };
}
