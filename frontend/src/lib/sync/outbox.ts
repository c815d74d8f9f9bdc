/** The device's persistent client id, kept in the outbox database. */
export async function deviceClientId(_options: { databaseName?: string } = {}): Promise<string> {
  throw new Error('deviceClientId: not implemented yet');
}

/** Deletes this device's outbox, cached rows and client id (sign-out on a shared device). */
export async function deleteLocalData(_options: { databaseName?: string } = {}): Promise<void> {
  throw new Error('deleteLocalData: not implemented yet');
}
