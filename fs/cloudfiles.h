/*
 * The files that tell a consumer where things are: a Google Cloud
 * external_account credential file (credentials.json) and an Azure
 * workload identity env file, both pointing at the role's token as the
 * consumer sees it.  Neither holds a secret.
 */
#ifndef CREDFS_CLOUDFILES_H
#define CREDFS_CLOUDFILES_H

#include "buf.h"
#include "config.h"

/* Where the consumer sees the role's directory: consumer_path, else
 * MOUNTPOINT/NAME. */
int consumer_dir(const char *mountpoint, const struct cfg_role *role,
		 struct buf *dir) WUR;

/* credentials.json of a gcp role: type external_account, audience, the
 * JWT subject token type, token_url, credential_source.file = DIR/token,
 * and service_account_impersonation_url when service_account is set. */
int cloud_gcp_credentials_json(const char *mountpoint,
			       const struct cfg_role *role, struct buf *out) WUR;

/* env of an azure role: AZURE_CLIENT_ID, AZURE_TENANT_ID,
 * AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST. */
int cloud_azure_env(const char *mountpoint, const struct cfg_role *role,
		    struct buf *out) WUR;

#endif
