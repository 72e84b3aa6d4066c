// Asks STS who we are, with credentials from credfs's HTTP face through one
// AWS SDK for JavaScript v3 provider; prints the caller's Arn and key id.
// usage: node endpoint.mjs http|imds STS_ENDPOINT
//   http   fromHttp(): AWS_CONTAINER_CREDENTIALS_FULL_URI and the
//          authorization token variables (as endpoint.env sets them)
//   imds   fromInstanceMetadata(): IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromHttp, fromInstanceMetadata } from "@aws-sdk/credential-providers";

const [mode, endpoint] = process.argv.slice(2);
const region = "ap-northeast-1";
const providers = {
  http: () => fromHttp({ timeout: 5000 }),
  imds: () => fromInstanceMetadata({ timeout: 5000, maxRetries: 1 }),
};
if (!providers[mode]) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
const client = new STSClient({ region, endpoint, credentials: providers[mode]() });
const ident = await client.send(new GetCallerIdentityCommand({}));
const creds = await client.config.credentials();
console.log(JSON.stringify({ Arn: ident.Arn, AccessKeyId: creds.accessKeyId,
                             Expiration: creds.expiration ? creds.expiration.toISOString() : null }));
