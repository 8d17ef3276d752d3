/** `host:port/database` of a PostgreSQL URL: what logs, health and errors say, never its user or password. */
export function databaseAddress(url: string): string {
  const { hostname, port, pathname } = new URL(url);
  return `${hostname}:${port || '5432'}${pathname}`;
}
