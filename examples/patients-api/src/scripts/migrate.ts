/**
 * Encrypts the legacy plaintext patients in place, then builds their blind
 * indexes, with the fieldcrypt CLI and the service's own model (the config in
 * fieldcrypt.config.js), so they become searchable. Safe to rerun: values
 * already encrypted and indexes already current are left alone.
 */

import { fieldcrypt, CONFIG } from './cli.js';

// --typed: the billing object is encrypted as a whole, in the typed encoding the plugin reads back as an object.
fieldcrypt(['encrypt', '--typed', '--config', CONFIG]);
fieldcrypt(['reindex', '--config', CONFIG]);
