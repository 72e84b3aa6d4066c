// Gets an Azure access token with @azure/identity's
// WorkloadIdentityCredential, which reads AZURE_CLIENT_ID,
// AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST (a
// credfs role's env file) from the environment.  Instance discovery is
// off, as for any authority Microsoft does not know (a private or
// sovereign one): otherwise the library first asks login.microsoftonline.com
// about it.  Prints one JSON line per attempt:
//   {"ok":true,"token":...,"expiresOnTimestamp":MS}
//   {"ok":false,"name":...,"error":...}
// and exits 0 only if every attempt got a token.
// usage: node --import ./loopback_only.mjs azure_token.mjs [--scope S] [--repeat N] [--interval-ms MS]
import { WorkloadIdentityCredential } from "@azure/identity";

const o = { scope: "https://management.azure.com/.default", repeat: 1, intervalMs: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const next = () => argv[++i];
  switch (argv[i]) {
    case "--scope": o.scope = next(); break;
    case "--repeat": o.repeat = Number(next()); break;
    case "--interval-ms": o.intervalMs = Number(next()); break;
    default: console.error(`unknown argument ${argv[i]}`); process.exit(2);
  }
}

const credential = new WorkloadIdentityCredential({ disableInstanceDiscovery: true });
let allOk = true;
for (let i = 0; i < o.repeat; i++) {
  if (i && o.intervalMs) await new Promise((r) => setTimeout(r, o.intervalMs));
  try {
    const t = await credential.getToken(o.scope);
    console.log(JSON.stringify({ ok: true, token: t.token, expiresOnTimestamp: t.expiresOnTimestamp }));
  } catch (e) {
    allOk = false;
    console.log(JSON.stringify({ ok: false, name: e?.name, error: String(e?.message ?? e) }));
  }
}
process.exit(allOk ? 0 : 1);
