// Verifies a credfs token with jose against the mount's keys.json, as an
// OIDC relying party would: signature by the key the header names, issuer,
// audience, lifetime.  Prints the protected header and the claims as JSON.
// usage: node verify_jwt.mjs KEYS_JSON TOKEN_FILE ISSUER AUDIENCE
import { readFileSync } from "node:fs";
import { createLocalJWKSet, jwtVerify } from "jose";

const [jwksPath, tokenPath, issuer, audience] = process.argv.slice(2);
const jwks = createLocalJWKSet(JSON.parse(readFileSync(jwksPath, "utf8")));
const token = readFileSync(tokenPath, "utf8");
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ["ES256", "RS256"],
    requiredClaims: ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
  });
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (err) {
  // Only the reason: never the token.
  console.error(`verify_jwt: ${err.code}: ${err.message}`);
  process.exit(1);
}
