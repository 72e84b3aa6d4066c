// Asks STS who we are, with credentials from one AWS SDK for JavaScript v3
// provider reading a credfs role directory; prints the caller's Arn.
// usage: node whoami.mjs ini|process|tokenfile ENDPOINT [ROLE_DIR ROLE_ARN SESSION]
//   ini        fromIni(): AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE
//   process    fromProcess(): credential_process in AWS_CONFIG_FILE
//   tokenfile  fromTokenFile(): ROLE_DIR/token exchanged at ENDPOINT
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromIni, fromProcess, fromTokenFile } from "@aws-sdk/credential-providers";

const [mode, endpoint, roleDir, roleArn, session] = process.argv.slice(2);
const region = "ap-northeast-1";
const providers = {
  ini: () => fromIni(),
  process: () => fromProcess(),
  tokenfile: () => fromTokenFile({
    roleArn,
    roleSessionName: session,
    webIdentityTokenFile: `${roleDir}/token`,
    clientConfig: { region, endpoint },
  }),
};
if (!providers[mode]) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
const client = new STSClient({ region, endpoint, credentials: providers[mode]() });
const ident = await client.send(new GetCallerIdentityCommand({}));
const creds = await client.config.credentials();
// The key id is not a secret; it lets the test tell sessions apart.
console.log(JSON.stringify({ Arn: ident.Arn, AccessKeyId: creds.accessKeyId }));
