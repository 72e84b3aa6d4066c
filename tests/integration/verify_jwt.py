"""Verifies a credfs token with PyJWT (Debian's python3-jwt) against a JWKS,
as AWS IAM would: signature by the key named in the header's kid, issuer,
audience, expiry.  Prints the verified claims as JSON.
usage: verify_jwt.py JWKS_FILE TOKEN_FILE ISSUER AUDIENCE"""
import json
import sys

import jwt

jwks_path, token_path, issuer, audience = sys.argv[1:5]
with open(jwks_path) as f:
    jwks = json.load(f)
with open(token_path) as f:
    token = f.read()
header = jwt.get_unverified_header(token)
matches = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
if len(matches) != 1:
    sys.exit("kid %s is not in the JWKS exactly once" % header["kid"])
key = jwt.PyJWK.from_dict(matches[0]).key
claims = jwt.decode(token, key, algorithms=[header["alg"]], audience=audience,
                    issuer=issuer, options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]})
print(json.dumps({"header": header, "claims": claims}))
