// Type definitions for fieldcrypt. Hand-written; kept in step with index.js
// and checked by `npm run test:types` (tsc --strict over __test__/types.ts).

/** A stored value: `VV:IV:TAG:CT` (two-digit key version, hex IV, hex tag, hex ciphertext). */
export type EncryptedString = string;

/** A two-digit key version such as `"01"`. */
export type KeyVersion = string;

/**
 * Where a value belongs, e.g. `{ collection: 'patients', path: 'ssn', id }`: any
 * names, string values. A value encrypted with a context decrypts only with the
 * same context (it is authenticated as AES-GCM additional data; docs/format.md).
 */
export type BindingContext = Readonly<Record<string, string>>;

export interface EncryptOptions {
  /** Encrypt under this key version instead of the current one. */
  keyVersion?: KeyVersion;
  /** Bind the value to this context; `null` or absent: unbound. */
  context?: BindingContext | null;
}

export interface DecryptOptions {
  /**
   * The context the value was bound to. Read elsewhere, a bound value fails with
   * `ERR_FIELDCRYPT_CONTEXT_MISMATCH`; an unbound value fails with
   * `ERR_FIELDCRYPT_UNBOUND_VALUE` unless `allowUnbound`.
   */
  context?: BindingContext | null;
  /** With a context, accept unbound values too (a migration window). */
  allowUnbound?: boolean;
}

export interface ReEncryptOptions {
  /** The context the new value is bound to; `null` or absent: unbound. */
  context?: BindingContext | null;
  /** The context the value is read in; defaults to `context`; `null`: read it as unbound. */
  fromContext?: BindingContext | null;
  /** Accept an unbound value where `fromContext` is given. */
  allowUnbound?: boolean;
}

export interface ConfigureKeysOptions {
  /** The version new values are written with; defaults to the highest version given. */
  current?: KeyVersion;
}

/** Encrypts UTF-8 text under the current key version (or `options.keyVersion`), bound to `options.context` if given. */
export function encrypt(plaintext: string, options?: EncryptOptions): EncryptedString;

/** Decrypts a stored value. Throws `ERR_FIELDCRYPT_AUTH_FAILED` for tampered or wrong-key data. */
export function decrypt(encryptedData: EncryptedString, options?: DecryptOptions): string;

/** Encrypts binary data (Buffer or Uint8Array) into the same stored format. */
export function encryptBuffer(data: Uint8Array, options?: EncryptOptions): EncryptedString;

/** Decrypts a stored value written by `encryptBuffer` to a Buffer. */
export function decryptBuffer(encryptedData: EncryptedString, options?: DecryptOptions): Buffer;

/** True only for a well-formed stored value. */
export function isEncrypted(value: unknown): value is EncryptedString;

/**
 * Decrypts and re-encrypts under `newKeyVersion` (and `options.context`: to bind,
 * move or rotate bound values); the plaintext never reaches JavaScript.
 */
export function reEncrypt(
  encryptedData: EncryptedString,
  newKeyVersion: KeyVersion,
  options?: ReEncryptOptions,
): EncryptedString;

/** The key version a stored value was written with, e.g. `"01"`. */
export function getKeyVersion(encryptedData: EncryptedString): KeyVersion;

/** Encrypts every string: short values, and all values of batches with 8 MiB of results or more, in a few native calls (faster than a loop); other long ones a call each. All or nothing; errors carry `index`. */
export function encryptMany(values: readonly string[], options?: EncryptOptions): EncryptedString[];

/** Decrypts every stored value, as `encryptMany`. All or nothing; errors carry `index`. */
export function decryptMany(values: readonly EncryptedString[], options?: DecryptOptions): string[];

/**
 * `encryptMany` on the libuv thread pool, in chunks, keeping the event loop responsive.
 * The array is taken when called; each value is checked when its chunk starts, and a
 * failure rejects (with `index`) once the chunks already on the pool are done. The
 * strings are still made on the JS thread, so on two cores it buys
 * responsiveness rather than throughput (docs/performance.md).
 */
export function encryptManyAsync(values: readonly string[], options?: EncryptOptions): Promise<EncryptedString[]>;

/** `decryptMany` on the libuv thread pool, in chunks, as `encryptManyAsync`. */
export function decryptManyAsync(values: readonly EncryptedString[], options?: DecryptOptions): Promise<string[]>;

/**
 * Uses exactly these keys (`{ '01': hex64, '02': hex64 }`) from now on, instead of
 * process.env. All are validated first; on error the previous keys stay in force.
 */
export function configureKeys(keys: Record<KeyVersion, string>, options?: ConfigureKeysOptions): void;

/** Forgets all keys, returns to environment mode and re-reads `ENCRYPTION_KEY*` from process.env. */
export function reloadKeys(): void;

/** The key versions loaded so far, ascending (no key material). */
export function loadedKeyVersions(): KeyVersion[];

/** A blind index value: the index key version, `:`, then 64 lowercase hex digits (67 characters). */
export type BlindIndexValue = string;

/** Where an index value belongs: its MongoDB collection and schema path (both part of the derivation). */
export interface BlindIndexScope {
  /** The MongoDB collection name, e.g. `'patients'`. */
  collection: string;
  /** The schema path, dotted, without positional parts, e.g. `'personExtended.identifications.idNumber'`. */
  path: string;
}

/** A scope and the index key version to use (default: the current index key version). */
export interface BlindIndexOptions extends BlindIndexScope {
  version?: KeyVersion;
}

/** Options of `configureIndexKeys`. */
export interface ConfigureIndexKeysOptions {
  /** The version new index values are written with (default: the highest version given). */
  current?: KeyVersion;
}

/**
 * Uses exactly these index keys (`{ '01': hex64 }`) from now on, instead of
 * `ENCRYPTION_INDEX_KEY*` in process.env. Index keys must differ from every encryption key
 * (`ERR_FIELDCRYPT_KEY_CONFLICT`). All are validated first; on error the previous keys stay.
 */
export function configureIndexKeys(keys: Record<KeyVersion, string>, options?: ConfigureIndexKeysOptions): void;

/** Forgets all index keys, returns to environment mode and re-reads `ENCRYPTION_INDEX_KEY*`. */
export function reloadIndexKeys(): void;

/** The index key versions: `current` (null while no index key is set) and every installed one, ascending. */
export function indexKeyVersions(): { current: KeyVersion | null; live: KeyVersion[] };

/**
 * The blind index value of `input` (a string, MACed as UTF-8, or bytes) for a collection and
 * path: `VV:` + hex(HMAC-SHA256(HKDF-SHA256(index key, collection, path), input)).
 * Normalise values with `indexInput` first.
 */
export function blindIndex(input: string | Uint8Array, options: BlindIndexOptions): BlindIndexValue;

/** `blindIndex` of every input, in one native call. */
export function blindIndexMany(inputs: readonly (string | Uint8Array)[], options: BlindIndexOptions): BlindIndexValue[];

/** One index value per installed index key version, the current one first (what a query matches during rotation). */
export function blindIndexAll(input: string | Uint8Array, options: BlindIndexScope): BlindIndexValue[];

/** How a path's values are normalised before indexing (part of the index definition). */
export interface IndexInputOptions {
  trim?: boolean;
  lowercase?: boolean;
  /** Each run of whitespace becomes one space. */
  collapseWhitespace?: boolean;
  /** Applied last, to every string; must return a string. */
  normalize?: (value: string) => string;
}

/**
 * The exact text a blind index MACs for a value: strings NFC-normalised and then
 * normalised by `options`; anything else as canonical JSON (sorted keys, `$date`, `$oid`,
 * `$numberDecimal`, `$binary`). See docs/format.md.
 */
export function indexInput(value: unknown, options?: IndexInputOptions): string;

/** One key version's usage in this process. */
export interface KeyUsage {
  /** Values encrypted under this version (decryptions are not counted). */
  encryptions: number;
}

/**
 * Encryptions per key version in this process, for the versions with any, e.g.
 * `{ '01': { encryptions: 1200 } }`. NIST SP 800-38D allows at most 2^32 encryptions
 * per key with fieldcrypt's 16-byte IVs: rotate well before. Counts are per version
 * (they survive `configureKeys`/`reloadKeys`) and per process (worker threads share
 * them; other processes and instances count their own).
 */
export function keyUsage(): Record<KeyVersion, KeyUsage>;

/** What an `onKeyUsage` handler receives. */
export interface KeyUsageEvent {
  version: KeyVersion;
  /** The count when the check found it at or above `threshold`. */
  encryptions: number;
  threshold: number;
  /** 2^32: SP 800-38D's limit for one key with 16-byte IVs. */
  limit: number;
}

export interface KeyUsageHookOptions {
  /** Called once per key version, the first time a check finds its count at or above `threshold`. Errors it throws become process warnings. */
  handler: (event: KeyUsageEvent) => void;
  /** An integer from 1 to 2^32; default 2^31 (half the limit). */
  threshold?: number;
  /** How often the counts are checked, on an unref'd timer; default 60000 (1 to 2^31 - 1). */
  intervalMs?: number;
}

export interface KeyUsageHook {
  /** Checks the counts now (the timer does too). */
  check(): void;
  /** Stops the hook: no more checks, no more calls. */
  remove(): void;
}

/**
 * Warns when a key version nears its limit: checks `keyUsage()` every `intervalMs`
 * (never on the encrypt path) and calls `handler` once per version that reaches
 * `threshold`. Throws `ERR_FIELDCRYPT_INVALID_ARGUMENT` for bad options.
 */
export function onKeyUsage(options: KeyUsageHookOptions): KeyUsageHook;

/** A master key provider of `kmsProviders`: `local`, `aws`, `type:label`, or a custom one. */
export type KmsProviderOptions =
  | { key: string | Uint8Array }
  | {
      region?: string;
      endpoint?: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      sessionToken?: string;
      credentials?: unknown;
      maxAttempts?: number;
    }
  | CustomKmsProvider;

/** What a custom provider's wrap/unwrap receive as `context`. */
export interface KmsContext {
  keyVaultNamespace: string;
  /** The DEK's id, 32 hex digits. */
  keyId: string;
  version: KeyVersion;
}

/** A custom KMS (Vault transit, GCP, Azure, …): see docs/key-vault.md. */
export interface CustomKmsProvider {
  wrap(args: { plaintext: Uint8Array; masterKey: Record<string, unknown>; context: KmsContext }): Promise<Uint8Array>;
  /** Resolves with the 32-byte DEK, which fieldcrypt installs and then zero-fills. */
  unwrap(args: {
    keyMaterial: Uint8Array;
    masterKey: Record<string, unknown>;
    context: KmsContext;
  }): Promise<Uint8Array>;
}

export interface LoadKeyVaultOptions {
  /** "database.collection"; default "encryption.__keyVault". */
  keyVaultNamespace?: string;
  kmsProviders: Record<string, KmsProviderOptions>;
  /** A Mongoose connection or a MongoClient (or give `uri`). */
  connection?: unknown;
  uri?: string;
  /** Re-read the vault (new, rewrapped, retired DEKs) and flush usage counts this often. */
  refreshIntervalMS?: number;
  /** The version new values are written with; default: the newest active DEK. */
  currentVersion?: KeyVersion;
  /**
   * The index key version new blind index values are written with; default: the
   * newest active index DEK (purpose "index"), when the vault holds one.
   */
  currentIndexVersion?: KeyVersion;
}

/** A loaded key vault. Emits 'refreshError' (FieldCryptError) and 'refresh' ({ versions, errors }). */
export interface KeyVault {
  readonly keyVaultNamespace: string;
  /** The versions loaded from the vault. */
  readonly versions: KeyVersion[];
  /** The index key versions (blind-index DEKs) loaded from the vault. */
  readonly indexVersions: KeyVersion[];
  /** Re-reads the vault now; keeps serving loaded keys on failure; resolves with the errors met. */
  refresh(): Promise<FieldCryptError[]>;
  /** Adds this process's encryptions to each DEK's usage.encryptions. */
  flushUsage(): Promise<void>;
  /** Stops refreshing, flushes usage, closes a client opened from `uri`. Keys stay loaded. */
  close(): Promise<void>;
  on(event: 'refreshError', listener: (err: FieldCryptError) => void): this;
  on(
    event: 'refresh',
    listener: (info: { versions: KeyVersion[]; indexVersions: KeyVersion[]; errors: FieldCryptError[] }) => void,
  ): this;
}

/**
 * Unwraps every non-retired DEK of the key vault once and installs it in the
 * native key ring, or the native index key ring for blind-index DEKs (DEKs
 * never become JavaScript values with the local provider).
 * Rejects with `ERR_FIELDCRYPT_KMS` or `ERR_FIELDCRYPT_KEY_VAULT` when any DEK cannot be loaded.
 */
export function loadKeyVault(options: LoadKeyVaultOptions): Promise<KeyVault>;

/**
 * A `pre('save')` hook encrypting `path` when it is modified, non-empty and not
 * already encrypted. `path` may be dotted, or an alias (Mongoose's `alias`
 * option) of the path it stands for. Works on Mongoose 9 (no `next`) and
 * Mongoose 8 (`next`).
 */
export function encryptFieldIfModified(path: string): (this: any, nextOrOptions?: unknown) => void;

/** A document method returning the plaintext of `path` (the value itself when null, undefined or ''). */
export function createDecryptMethod(path: string): (this: any) => string | null | undefined;

/** The same, for `schema.virtual(name).get(...)`. */
export function createDecryptedGetter(path: string): (this: any) => string | null | undefined;

/** Which native build is loaded: the accelerated x86-64-v3 one, the portable one, or FIELDCRYPT_NATIVE_PATH's. */
export function nativeInfo(): { variant: 'x86-64-v3' | 'portable' | 'custom'; file: string };

// ---------------------------------------------------------------------------
// The fieldEncryption Mongoose plugin

/** What an audit callback receives: never a plaintext or a stored value. */
export interface FieldEncryptionAuditEvent {
  /** The model's name; undefined for a schema not compiled into a model. */
  modelName: string | undefined;
  /** The raw schema path, e.g. `'ssn'`, `'identifications.idNumber'`, `'secrets.$*'`. */
  path: string;
  /** The document's `_id` when one is known (documents, `_id` filters); otherwise undefined. */
  documentId: unknown;
  /** The key version of the value, e.g. `"01"`. */
  keyVersion: KeyVersion;
}

/** A searchable path's options (`searchable: { ... }` in a schema, or in the plugin's `searchable` list). */
export interface SearchableOptions {
  /** Index the value with surrounding whitespace removed. */
  trim?: boolean;
  /** Index the value lowercased. */
  lowercase?: boolean;
  /** Index the value with every run of whitespace as one space. */
  collapseWhitespace?: boolean;
  /** A last normaliser of the (NFC, trimmed, ...) text; must return a string. */
  normalize?: (text: string) => string;
  /** A unique (sparse) index on the index path. */
  unique?: boolean;
}

/** One searchable path of a schema or model, as searchablePaths() lists it. */
export interface SearchablePath {
  /** The schema path of the encrypted value (`'personExtended.identifications.idNumber'`). */
  path: string;
  /** Where its index values are stored: the sibling `<path>_bidx`. */
  indexPath: string;
  /** 'scalar': one index value; 'array': one per element, in order; 'container': one for the whole value. */
  kind: 'scalar' | 'array' | 'container';
  unique: boolean;
  /** The normalisers applied before indexing. */
  normalize: Omit<SearchableOptions, 'unique'>;
}

export interface FieldEncryptionOptions {
  /**
   * Paths to encrypt, besides those declared with `encrypted: true`. Dotted
   * paths reach nested objects, subdocuments, document arrays (`'ids.idNumber'`)
   * and Map values (`'secrets'` or `'secrets.$*'`); naming a container encrypts
   * every path in it except `_id`.
   */
  fields?: readonly string[];
  /**
   * `'auto'` (default): hydrated documents and lean results hold plaintext.
   * `'explicit'`: they hold the stored ciphertext; read with `doc.decryptField(path)`,
   * `doc.toObject({ includeDecrypted: true })` or `decryptDocument(Model, raw)`.
   */
  decrypt?: 'auto' | 'explicit';
  /** Whether toJSON()/toObject() include the (decrypted) encrypted paths by default. Default false: omitted. */
  includeDecrypted?: boolean;
  /** Read values stored in clear on encrypted paths (a migration window) instead of throwing. Default false. */
  allowUnencrypted?: boolean;
  /**
   * Context binding, the default for every encrypted path of the schema (a
   * path's own `bind` schema option, next to `encrypted: true`, overrides it):
   * `'collection'` binds each value to `{ collection, path }`, `'document'` also
   * to the document's `_id`, so a ciphertext copied elsewhere in the database
   * fails with `ERR_FIELDCRYPT_CONTEXT_MISMATCH`. Default `false`: unbound.
   * Query updates of document-bound paths must filter by `_id` equality.
   */
  bind?: false | 'collection' | 'document';
  /**
   * Read values written before their path was bound (a migration window)
   * instead of throwing `ERR_FIELDCRYPT_UNBOUND_VALUE`. Default false.
   */
  allowUnbound?: boolean;
  /** Called for every value encrypted. */
  onEncrypt?: (event: FieldEncryptionAuditEvent) => void;
  /** Called for every value decrypted. */
  onDecrypt?: (event: FieldEncryptionAuditEvent) => void;
  /**
   * Encrypted paths kept with a blind index (a keyed HMAC at the sibling path
   * `<path>_bidx`) so that equality queries work, besides those declared with
   * `searchable` next to `encrypted: true`. A path must be encrypted.
   */
  searchable?: readonly (string | ({ path: string } & SearchableOptions))[];
  /** Mongoose's own plugin option. */
  deduplicate?: boolean;
}

/**
 * The Mongoose plugin: `schema.plugin(fieldEncryption, { fields: ['ssn'] })`.
 * Encrypts on every write path Mongoose has and decrypts on every read path.
 * Apply it to the schema of the top-level model.
 */
export function fieldEncryption(schema: any, options?: FieldEncryptionOptions): void;

/**
 * Decrypts a raw document of `Model` (an aggregation result, a
 * `Model.collection` result) in place and returns it; its blind-index
 * values (`<leaf>_bidx`) are removed, as from a lean result.
 */
export function decryptDocument<T extends object>(Model: { schema: any; modelName: string }, raw: T): T;
export function decryptDocument(Model: { schema: any; modelName: string }, raw: null | undefined): null | undefined;

/**
 * The raw dotted paths the plugin encrypts (through arrays; Map values as
 * `$*`), including a model's discriminators.
 */
export function encryptedPaths(schemaOrModel: any): string[];

/** The searchable (blind-indexed) paths of a schema or model, including a model's discriminators. */
export function searchablePaths(schemaOrModel: any): SearchablePath[];

/** The method the plugin adds to documents. */
export interface FieldEncryptionMethods {
  /**
   * The plaintext of one encrypted path, with its type; a concrete path such
   * as `'ids.0.idNumber'` works. The way to read in `decrypt: 'explicit'` mode.
   */
  decryptField(path: string): any;
}

/** Per-call options for toJSON()/toObject() on a document of a model using the plugin. */
export interface FieldEncryptionToObjectOptions {
  /** Include the encrypted paths, decrypted (for trusted callers). */
  includeDecrypted?: boolean;
}

// `doc.toJSON({ includeDecrypted: true })` type-checks. (A project without
// Mongoose is unaffected: TypeScript ignores an augmentation of a module it
// cannot resolve.)
declare module 'mongoose' {
  interface ToObjectOptions<RawDocType = unknown, THydratedDocumentType = HydratedDocument<RawDocType>> {
    /** fieldcrypt: include the encrypted paths, decrypted (the fieldEncryption plugin omits them by default). */
    includeDecrypted?: boolean;
  }
}

export type FieldCryptErrorCode =
  | 'ERR_FIELDCRYPT_KEY_NOT_FOUND'
  | 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH'
  | 'ERR_FIELDCRYPT_INVALID_KEY'
  | 'ERR_FIELDCRYPT_WEAK_KEY'
  | 'ERR_FIELDCRYPT_INVALID_KEY_VERSION'
  | 'ERR_FIELDCRYPT_KEY_CONFLICT'
  | 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND'
  | 'ERR_FIELDCRYPT_INVALID_FORMAT'
  | 'ERR_FIELDCRYPT_AUTH_FAILED'
  | 'ERR_FIELDCRYPT_CONTEXT_MISMATCH'
  | 'ERR_FIELDCRYPT_UNBOUND_VALUE'
  | 'ERR_FIELDCRYPT_TOO_LARGE'
  | 'ERR_FIELDCRYPT_NOT_UTF8'
  | 'ERR_FIELDCRYPT_INVALID_ARGUMENT'
  | 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE'
  | 'ERR_FIELDCRYPT_ADDON_NOT_BUILT'
  | 'ERR_FIELDCRYPT_INTERNAL'
  | 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE'
  | 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR'
  | 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY'
  | 'ERR_FIELDCRYPT_UNSUPPORTED_CODEC'
  | 'ERR_FIELDCRYPT_KMS'
  | 'ERR_FIELDCRYPT_KEY_VAULT';

/** Every error fieldcrypt throws. Messages never contain plaintext or key material. */
export class FieldCryptError extends Error {
  constructor(code: FieldCryptErrorCode, message: string);
  readonly code: FieldCryptErrorCode;
  readonly name: 'FieldCryptError';
  /** The key version involved, on key-not-found (also index keys) and authentication errors. */
  readonly keyVersion?: string;
  /** The failing element of a batch call. */
  readonly index?: number;
  /** The model involved (plugin errors). */
  readonly modelName?: string;
  /** The raw schema path involved (plugin errors), e.g. `'identifications.idNumber'`. */
  readonly path?: string;
  /** The refused update operator (ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR). */
  readonly operator?: string;
}

export const errorCodes: {
  readonly KEY_NOT_FOUND: 'ERR_FIELDCRYPT_KEY_NOT_FOUND';
  readonly INVALID_KEY_LENGTH: 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH';
  readonly INVALID_KEY: 'ERR_FIELDCRYPT_INVALID_KEY';
  readonly WEAK_KEY: 'ERR_FIELDCRYPT_WEAK_KEY';
  readonly INVALID_KEY_VERSION: 'ERR_FIELDCRYPT_INVALID_KEY_VERSION';
  readonly KEY_CONFLICT: 'ERR_FIELDCRYPT_KEY_CONFLICT';
  readonly INDEX_KEY_NOT_FOUND: 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND';
  readonly INVALID_FORMAT: 'ERR_FIELDCRYPT_INVALID_FORMAT';
  readonly AUTH_FAILED: 'ERR_FIELDCRYPT_AUTH_FAILED';
  readonly CONTEXT_MISMATCH: 'ERR_FIELDCRYPT_CONTEXT_MISMATCH';
  readonly UNBOUND_VALUE: 'ERR_FIELDCRYPT_UNBOUND_VALUE';
  readonly TOO_LARGE: 'ERR_FIELDCRYPT_TOO_LARGE';
  readonly NOT_UTF8: 'ERR_FIELDCRYPT_NOT_UTF8';
  readonly INVALID_ARGUMENT: 'ERR_FIELDCRYPT_INVALID_ARGUMENT';
  readonly UNSUPPORTED_TYPE: 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE';
  readonly ADDON_NOT_BUILT: 'ERR_FIELDCRYPT_ADDON_NOT_BUILT';
  readonly INTERNAL: 'ERR_FIELDCRYPT_INTERNAL';
  readonly UNENCRYPTED_VALUE: 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE';
  readonly UNSUPPORTED_OPERATOR: 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR';
  readonly UNSUPPORTED_QUERY: 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY';
  readonly UNSUPPORTED_CODEC: 'ERR_FIELDCRYPT_UNSUPPORTED_CODEC';
  readonly KMS: 'ERR_FIELDCRYPT_KMS';
  readonly KEY_VAULT: 'ERR_FIELDCRYPT_KEY_VAULT';
};
