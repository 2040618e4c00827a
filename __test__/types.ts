// Type-level tests for index.d.ts, checked by `npm run test:types`
// (tsc -p __test__/tsconfig.json: strict, noEmit, nodenext). Nothing here runs.
// Lines marked @ts-expect-error must be rejected by the compiler; if one ever
// type-checks, tsc reports the unused directive and the test fails.

import {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  isEncrypted,
  reEncrypt,
  getKeyVersion,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  keyUsage,
  onKeyUsage,
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
  blindIndex,
  blindIndexMany,
  blindIndexAll,
  indexInput,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  searchablePaths,
  FieldCryptError,
  errorCodes,
} from 'fieldcrypt';
import type {
  EncryptedString,
  KeyVersion,
  EncryptOptions,
  ConfigureKeysOptions,
  BlindIndexValue,
  BlindIndexOptions,
  BlindIndexScope,
  ConfigureIndexKeysOptions,
  IndexInputOptions,
  KeyUsage,
  KeyUsageEvent,
  KeyUsageHook,
  KeyUsageHookOptions,
  FieldCryptErrorCode,
  FieldEncryptionOptions,
  FieldEncryptionAuditEvent,
  FieldEncryptionMethods,
} from 'fieldcrypt';
import * as fieldcrypt from 'fieldcrypt';

import { Schema, model } from 'mongoose';
import type { HydratedDocument, Model } from 'mongoose';

/** Compile-time equality of two types. */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): void {}
declare function expectAssignable<T>(value: T): void;

// ---------------------------------------------------------------------------
// Core API

const stored: EncryptedString = encrypt('4111111111111111');
const storedV2: string = encrypt('x', { keyVersion: '02' });
const storedOpts: string = encrypt('x', {});
const plain: string = decrypt(stored);
const rotated: EncryptedString = reEncrypt(storedV2, '02');
const version: KeyVersion = getKeyVersion(rotated);
const versions: KeyVersion[] = loadedKeyVersions();
expectType<Equals<ReturnType<typeof encrypt>, string>>();
expectType<Equals<ReturnType<typeof decrypt>, string>>();
expectType<Equals<ReturnType<typeof reEncrypt>, string>>();
expectType<Equals<ReturnType<typeof getKeyVersion>, string>>();
expectType<Equals<ReturnType<typeof loadedKeyVersions>, string[]>>();
expectType<Equals<ReturnType<typeof configureKeys>, void>>();
expectType<Equals<ReturnType<typeof reloadKeys>, void>>();
void [plain, version, versions, storedOpts];

// ---------------------------------------------------------------------------
// Blind indexes (issue 20)

const scope: BlindIndexScope = { collection: 'patients', path: 'personExtended.identifications.idNumber' };
const indexOpts: BlindIndexOptions = { ...scope, version: '02' };
const iv1: BlindIndexValue = blindIndex('123-45-6789', scope);
const iv2: string = blindIndex(new Uint8Array([1, 2]), indexOpts);
const ivs: BlindIndexValue[] = blindIndexMany(['a', Buffer.from('b')], scope);
const ivAll: string[] = blindIndexAll('a', scope);
const ikOpts: ConfigureIndexKeysOptions = { current: '01' };
configureIndexKeys({ '01': 'c'.repeat(64) }, ikOpts);
configureIndexKeys({ '01': 'c'.repeat(64) });
reloadIndexKeys();
const ikv: { current: KeyVersion | null; live: KeyVersion[] } = indexKeyVersions();
const norm: IndexInputOptions = {
  trim: true,
  lowercase: true,
  collapseWhitespace: true,
  normalize: (s) => s.replace(/-/g, ''),
};
const text: string = indexInput({ a: 1, d: new Date() }, norm);
indexInput('x');
expectType<Equals<ReturnType<typeof blindIndex>, string>>();
expectType<Equals<ReturnType<typeof blindIndexMany>, string[]>>();
expectType<Equals<ReturnType<typeof configureIndexKeys>, void>>();
// @ts-expect-error collection and path are required
blindIndex('x', { path: 'p' });
// @ts-expect-error inputs are strings or bytes
blindIndex(42, scope);
// @ts-expect-error normalize returns a string
indexInput('x', { normalize: (s: string) => s.length });
// @ts-expect-error blindIndexAll takes no version: it returns every live one
blindIndexAll('x', { ...scope, version: '01' });
void [iv1, iv2, ivs, ivAll, ikv, text];

// Binary values
const storedBin: EncryptedString = encryptBuffer(Buffer.from([0xff, 0x00]));
encryptBuffer(new Uint8Array(4), { keyVersion: '02' });
const bytes: Buffer = decryptBuffer(storedBin);
const view: Uint8Array = decryptBuffer(storedBin);
expectType<Equals<ReturnType<typeof encryptBuffer>, string>>();
expectType<Equals<ReturnType<typeof decryptBuffer>, Buffer>>();
void [bytes, view];

const options: EncryptOptions = { keyVersion: '01' };
encrypt('x', options);
const emptyOptions: EncryptOptions = {};
encrypt('x', emptyOptions);

// isEncrypted is a type guard over unknown
declare const fromDb: unknown;
if (isEncrypted(fromDb)) {
  const s: string = fromDb;
  decrypt(s);
}
const maybe: string | number | null = Math.random() > 0.5 ? 'x' : null;
if (isEncrypted(maybe)) {
  expectType<Equals<typeof maybe, string>>();
}
const b: boolean = isEncrypted(42);
void b;

configureKeys({ '01': 'a'.repeat(64), '02': 'b'.repeat(64) });
configureKeys({ '01': 'a'.repeat(64), '02': 'b'.repeat(64) }, { current: '02' });
const cko: ConfigureKeysOptions = {};
configureKeys({ '01': 'a'.repeat(64) }, cko);
const fromSecretsManager: Record<string, string> = JSON.parse('{}');
configureKeys(fromSecretsManager);
reloadKeys();

// Key usage
const usage: Record<KeyVersion, KeyUsage> = keyUsage();
const used: number | undefined = keyUsage()['01']?.encryptions;
const hook: KeyUsageHook = onKeyUsage({
  handler: (event: KeyUsageEvent) => {
    const {
      version: v,
      encryptions,
      threshold,
      limit,
    }: { version: string; encryptions: number; threshold: number; limit: number } = event;
    void [v, encryptions, threshold, limit];
  },
});
const hookOptions: KeyUsageHookOptions = { handler: () => {}, threshold: 3 * 2 ** 30, intervalMs: 10_000 };
onKeyUsage(hookOptions).check();
hook.remove();
expectType<Equals<ReturnType<typeof keyUsage>, Record<string, KeyUsage>>>();
void [usage, used];

// ---------------------------------------------------------------------------
// Wrong calls are rejected

// @ts-expect-error keyUsage takes no arguments
keyUsage('01');
// @ts-expect-error onKeyUsage needs a handler
onKeyUsage({ threshold: 1000 });
// @ts-expect-error onKeyUsage takes an options object, not a function
onKeyUsage(() => {});
// @ts-expect-error threshold is a number
onKeyUsage({ handler: () => {}, threshold: '1000' });
// @ts-expect-error unknown option
onKeyUsage({ handler: () => {}, interval: 1000 });

// @ts-expect-error plaintext must be a string
encrypt(123);
// @ts-expect-error plaintext must be a string
encrypt(Buffer.from('x'));
// @ts-expect-error plaintext is required
encrypt();
// @ts-expect-error options is an object, not a version string
encrypt('x', '02');
// @ts-expect-error keyVersion is a string
encrypt('x', { keyVersion: 2 });
// @ts-expect-error unknown option
encrypt('x', { version: '02' });
encrypt('x', { keyVersion: undefined });
// @ts-expect-error decrypt takes a string
decrypt(Buffer.from('01:'));
// @ts-expect-error decrypt takes a string
decrypt(null);
// @ts-expect-error decrypt returns a string, not a Buffer
const notBuffer: Buffer = decrypt(stored);
void notBuffer;
// @ts-expect-error reEncrypt needs the new key version
reEncrypt(stored);
// @ts-expect-error the key version is a string
reEncrypt(stored, 2);
// @ts-expect-error getKeyVersion takes a string
getKeyVersion(1);
// @ts-expect-error configureKeys values are hex strings
configureKeys({ '01': 12345 });
// @ts-expect-error configureKeys values are hex strings, not Buffers
configureKeys({ '01': Buffer.alloc(32) });
// @ts-expect-error configureKeys takes an object
configureKeys('a'.repeat(64));
// @ts-expect-error current is a string
configureKeys({ '01': 'a'.repeat(64) }, { current: 1 });
// @ts-expect-error unknown option
configureKeys({ '01': 'a'.repeat(64) }, { currentVersion: '01' });
// @ts-expect-error reloadKeys takes no arguments
reloadKeys({ '01': 'a'.repeat(64) });
// @ts-expect-error loadedKeyVersions returns strings
const nums: number[] = loadedKeyVersions();
void nums;
// @ts-expect-error encryptBuffer takes bytes, not a string
encryptBuffer('text');
// @ts-expect-error encryptBuffer takes a Uint8Array, not an ArrayBuffer
encryptBuffer(new ArrayBuffer(4));
// @ts-expect-error encryptBuffer takes a Uint8Array, not other typed arrays
encryptBuffer(new Uint16Array(2));
// @ts-expect-error decryptBuffer returns a Buffer, not a string
const notText: string = decryptBuffer(storedBin);
void notText;
// @ts-expect-error no such export
fieldcrypt.decryptStream;

// ---------------------------------------------------------------------------
// Errors

try {
  decrypt(stored);
} catch (err: unknown) {
  if (err instanceof FieldCryptError) {
    const e: Error = err;
    const code: FieldCryptErrorCode = err.code;
    expectType<Equals<typeof err.code, FieldCryptErrorCode>>();
    switch (err.code) {
      case errorCodes.AUTH_FAILED:
        expectType<Equals<typeof err.code, 'ERR_FIELDCRYPT_AUTH_FAILED'>>();
        break;
      case 'ERR_FIELDCRYPT_INVALID_FORMAT':
      case 'ERR_FIELDCRYPT_KEY_NOT_FOUND':
        break;
      // @ts-expect-error not a FieldCryptErrorCode
      case 'ERR_SOMETHING_ELSE':
        break;
    }
    // @ts-expect-error code is readonly
    err.code = 'ERR_FIELDCRYPT_AUTH_FAILED';
    void [e, code, err.message, err.name, err.stack];
  }
}

expectType<Equals<typeof errorCodes.AUTH_FAILED, 'ERR_FIELDCRYPT_AUTH_FAILED'>>();
expectType<Equals<(typeof errorCodes)[keyof typeof errorCodes], FieldCryptErrorCode>>();
// @ts-expect-error errorCodes is read-only
errorCodes.AUTH_FAILED = 'x';
// @ts-expect-error no such code
errorCodes.NOPE;

// ---------------------------------------------------------------------------
// Mongoose helpers: the README quick start, against Mongoose 9's types

const getter: (this: any) => string | null | undefined = createDecryptedGetter('idNumber');
expectAssignable<(this: any) => string | null | undefined>(createDecryptMethod('idNumber'));
// @ts-expect-error the path is a string
encryptFieldIfModified(['idNumber']);
// @ts-expect-error the path is required
createDecryptMethod();

const IdentificationSchema = new Schema({
  idType: { type: String, required: true },
  idNumber: { type: String, required: true },
  expiresAt: Date,
});

IdentificationSchema.pre('save', encryptFieldIfModified('idNumber'));
IdentificationSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');
IdentificationSchema.virtual('idNumberPlain').get(getter);
IdentificationSchema.virtual('idNumberPlain2').get(createDecryptedGetter('idNumber'));

const Identification = model('Identification', IdentificationSchema);
void Identification;

// The same with explicitly typed methods, as a TypeScript app would declare them.
interface IIdentification {
  idType: string;
  idNumber: string;
}
interface IIdentificationMethods {
  getDecryptedIdNumber(): string | null | undefined;
}
type IdentificationModel = Model<IIdentification, {}, IIdentificationMethods>;
const TypedSchema = new Schema<IIdentification, IdentificationModel, IIdentificationMethods>({
  idType: { type: String, required: true },
  idNumber: { type: String, required: true },
});
TypedSchema.pre('save', encryptFieldIfModified('idNumber'));
TypedSchema.method('getDecryptedIdNumber', createDecryptMethod('idNumber'));
TypedSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');
const TypedIdentification = model<IIdentification, IdentificationModel>('TypedIdentification', TypedSchema);

async function useTypedModel(): Promise<void> {
  const doc: HydratedDocument<IIdentification, IIdentificationMethods> = new TypedIdentification({
    idType: 'passport',
    idNumber: 'X1234567',
  });
  await doc.save();
  const plainId: string | null | undefined = doc.getDecryptedIdNumber();
  void plainId;
}
void useTypedModel;

// ---------------------------------------------------------------------------
// The fieldEncryption plugin, against Mongoose 9's types

const PatientSchema = new Schema({
  name: String,
  ssn: { type: String, encrypted: true },
  age: { type: Number, encrypted: true },
  tags: [{ type: String, encrypted: true }],
  secrets: { type: Map, of: { type: String, encrypted: true } },
  patientRecord: { billing: { cardNumber: String } },
});
PatientSchema.plugin(fieldEncryption);
PatientSchema.plugin(fieldEncryption, { fields: ['patientRecord.billing'] });
PatientSchema.plugin(fieldEncryption, {
  fields: ['ssn', 'secrets.$*'],
  decrypt: 'explicit',
  includeDecrypted: false,
  allowUnencrypted: true,
  onEncrypt: ({ modelName, path, documentId, keyVersion }) => void [modelName, path, documentId, keyVersion],
  onDecrypt: (event: FieldEncryptionAuditEvent) => {
    const v: KeyVersion = event.keyVersion;
    const p: string = event.path;
    const m: string | undefined = event.modelName;
    void [v, p, m];
  },
});
PatientSchema.plugin(fieldEncryption, { bind: 'document', allowUnbound: true });
PatientSchema.plugin(fieldEncryption, { bind: 'collection' });
PatientSchema.plugin(fieldEncryption, { bind: false });
const BoundSchema = new Schema({ ssn: { type: String, encrypted: true, bind: 'document' } });
BoundSchema.plugin(fieldEncryption, { bind: 'collection' });
// @ts-expect-error bind is false, 'collection' or 'document'
PatientSchema.plugin(fieldEncryption, { bind: 'row' });
// @ts-expect-error allowUnbound is a boolean
PatientSchema.plugin(fieldEncryption, { allowUnbound: 'yes' });
const pluginOptions: FieldEncryptionOptions = { fields: ['ssn'] as const };
PatientSchema.plugin(fieldEncryption, pluginOptions);
// @ts-expect-error fields is an array of paths
PatientSchema.plugin(fieldEncryption, { fields: 'ssn' });
// @ts-expect-error decrypt is 'auto' or 'explicit'
PatientSchema.plugin(fieldEncryption, { decrypt: 'lazy' });
// @ts-expect-error `encrypt` is not an option (Mongoose reserves the name for CSFLE)
PatientSchema.plugin(fieldEncryption, { encrypt: true });
// @ts-expect-error audit callbacks get an event, not a string
PatientSchema.plugin(fieldEncryption, { onEncrypt: (value: string) => value.length });
PatientSchema.plugin(fieldEncryption, { searchable: ['ssn', { path: 'birthDate', trim: true, unique: true }] });
// @ts-expect-error searchable normalisers are booleans
PatientSchema.plugin(fieldEncryption, { searchable: [{ path: 'ssn', lowercase: 'yes' }] });
// @ts-expect-error includeDecrypted is a boolean
PatientSchema.plugin(fieldEncryption, { includeDecrypted: 'yes' });

const Patient = model('Patient', PatientSchema);
const paths: string[] = encryptedPaths(Patient);
encryptedPaths(PatientSchema);
const searchable: { path: string; indexPath: string; kind: 'scalar' | 'array' | 'container' }[] =
  searchablePaths(Patient);
void searchable;
void paths;

async function usePatients(): Promise<void> {
  const doc = await Patient.findOne();
  if (doc) {
    const out = doc.toJSON({ includeDecrypted: true });
    const obj = doc.toObject({ includeDecrypted: false, flattenMaps: true });
    void [out, obj];
    const methods = doc as unknown as FieldEncryptionMethods;
    const ssn: unknown = methods.decryptField('ssn');
    void ssn;
  }
  const [raw] = await Patient.aggregate<{ ssn?: string }>([{ $match: {} }]);
  const decrypted: { ssn?: string } = decryptDocument(Patient, raw);
  const nothing: null | undefined = decryptDocument(Patient, null);
  void [decrypted, nothing];
  // @ts-expect-error decryptDocument takes a model first
  decryptDocument(raw);
}
void usePatients;

try {
  decrypt(stored);
} catch (err: unknown) {
  if (err instanceof FieldCryptError && err.code === errorCodes.UNSUPPORTED_OPERATOR) {
    const where: string | undefined = `${err.modelName}.${err.path} (${err.operator})`;
    void where;
  }
  if (err instanceof FieldCryptError) {
    switch (err.code) {
      case 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE':
      case 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY':
      case 'ERR_FIELDCRYPT_UNSUPPORTED_CODEC':
        break;
    }
  }
}

// Context binding in the core API
{
  const ctx: fieldcrypt.BindingContext = { collection: 'patients', path: 'ssn', id: '65f0a1b2c3d4e5f601234567' };
  const bound: fieldcrypt.EncryptedString = fieldcrypt.encrypt('x', { context: ctx, keyVersion: '01' });
  const plain: string = fieldcrypt.decrypt(bound, { context: ctx, allowUnbound: true });
  const buf: Buffer = fieldcrypt.decryptBuffer(fieldcrypt.encryptBuffer(new Uint8Array([1]), { context: ctx }), {
    context: ctx,
  });
  const moved: string = fieldcrypt.reEncrypt(bound, '02', { context: ctx, fromContext: null, allowUnbound: false });
  const many: string[] = fieldcrypt.decryptMany(fieldcrypt.encryptMany(['a'], { context: ctx }), { context: ctx });
  const later: Promise<string[]> = fieldcrypt.decryptManyAsync(['x'], { context: null });
  // @ts-expect-error context values are strings
  fieldcrypt.encrypt('x', { context: { id: 42 } });
  // @ts-expect-error allowUnbound is a boolean
  fieldcrypt.decrypt(bound, { allowUnbound: 'yes' });
  void [plain, buf, moved, many, later];
}

// The key vault
async function keyVaultTypes(): Promise<void> {
  const vault: fieldcrypt.KeyVault = await fieldcrypt.loadKeyVault({
    uri: 'mongodb://127.0.0.1/app',
    kmsProviders: {
      local: { key: 'env:FIELDCRYPT_LOCAL_MASTER_KEY' },
      aws: { region: 'eu-west-1' },
      transit: {
        wrap: async ({ plaintext }) => plaintext,
        unwrap: async ({ keyMaterial, context }) => (context.version === '01' ? keyMaterial : new Uint8Array(32)),
      },
    },
    refreshIntervalMS: 60_000,
  });
  const versions: string[] = vault.versions;
  const errors: fieldcrypt.FieldCryptError[] = await vault.refresh();
  vault.on('refreshError', (err) => void err.code);
  await vault.close();
  // @ts-expect-error kmsProviders is required
  await fieldcrypt.loadKeyVault({ uri: 'mongodb://127.0.0.1/app' });
  void [versions, errors];
}
void keyVaultTypes;
