// Gets a Google Cloud access token with google-auth-library from the
// credential file in GOOGLE_APPLICATION_CREDENTIALS (a credfs role's
// credentials.json), as an application using Application Default
// Credentials does.  Prints one JSON line per attempt:
//   {"ok":true,"token":...,"expiry_date":MS,"client":"IdentityPoolClient"}
//   {"ok":false,"error":...,"status":HTTP}
// and exits 0 only if every attempt got a token.
// usage: node --import ./loopback_only.mjs gcp_token.mjs [--repeat N] [--interval-ms MS]
//        [--eager-refresh-ms MS] [--scope S]...
//
// GoogleAuth looks for a project id before it hands out a token: the
// environment, gcloud, the GCE metadata server (169.254.169.254), then
// Cloud Resource Manager.  A project id is passed and the metadata server
// is pinned to a closed loopback port, so none of that leaves the machine.
process.env.GCE_METADATA_HOST ??= "127.0.0.1:9";
process.env.METADATA_SERVER_DETECTION ??= "none";
const { GoogleAuth } = await import("google-auth-library");

const o = { repeat: 1, intervalMs: 0, eagerRefreshMs: undefined, scopes: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const next = () => argv[++i];
  switch (argv[i]) {
    case "--repeat": o.repeat = Number(next()); break;
    case "--interval-ms": o.intervalMs = Number(next()); break;
    case "--eager-refresh-ms": o.eagerRefreshMs = Number(next()); break;
    case "--scope": o.scopes.push(next()); break;
    default: console.error(`unknown argument ${argv[i]}`); process.exit(2);
  }
}

const auth = new GoogleAuth({
  projectId: "fake-project",
  scopes: o.scopes.length ? o.scopes : ["https://www.googleapis.com/auth/cloud-platform"],
  ...(o.eagerRefreshMs === undefined ? {} : { clientOptions: { eagerRefreshThresholdMillis: o.eagerRefreshMs } }),
});
let allOk = true;
for (let i = 0; i < o.repeat; i++) {
  if (i && o.intervalMs) await new Promise((r) => setTimeout(r, o.intervalMs));
  try {
    const token = await auth.getAccessToken();
    const client = await auth.getClient();
    console.log(JSON.stringify({ ok: true, token, expiry_date: client.credentials?.expiry_date,
                                 client: client.constructor.name }));
  } catch (e) {
    allOk = false;
    console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), status: e?.response?.status }));
  }
}
process.exit(allOk ? 0 : 1);
