'use strict';

// The fieldcrypt CLI's view of the service: the patient model's encrypted and
// searchable paths, on the service's database. Used by `migrate`; also works
// as `npx fieldcrypt status --config examples/patients-api/fieldcrypt.config.js`.
// Keys: the same key vault as the service (keyVault below).

const mongoose = require('mongoose');
const { patientSchema } = require('./dist/model.js');
const { KEY_VAULT_NAMESPACE, kmsProviders } = require('./dist/keys.js');

module.exports = {
  uri: process.env.MONGODB_URI,
  db: process.env.MONGODB_DB,
  keyVault: { keyVaultNamespace: KEY_VAULT_NAMESPACE, kmsProviders: kmsProviders() },
  targets: [
    {
      model: mongoose.model(
        'Patient',
        patientSchema(() => {}),
      ),
    },
  ],
};
