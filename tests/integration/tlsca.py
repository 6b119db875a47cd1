"""A throwaway certificate authority for the HTTPS tests, made with the openssl command line:
a CA, and server certificates it signs for localhost and 127.0.0.1 (EC P-256 or RSA 2048).

    ca = TestCA(tmpdir)                 # ca.cert: the CA's PEM, to trust
    chain, key = ca.issue("srv")        # leaf + CA chain PEM, and the leaf's key
    ca.spki_sha256_b64(chain)           # for Chromium's --ignore-certificate-errors-spki-list
"""
import base64
import os
import subprocess


def _run(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.crt")
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", "/CN=reeld test CA",
             "-addext", "basicConstraints=critical,CA:true",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.serial = 1

    def issue(self, name, kind="ec", days=2, names=("localhost",), ips=("127.0.0.1",)):
        """Issues a server certificate; returns (chain PEM path: leaf then CA, key PEM path)."""
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        crt = os.path.join(self.dir, f"{name}.crt")
        chain = os.path.join(self.dir, f"{name}.chain.pem")
        ext = os.path.join(self.dir, f"{name}.ext")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" \
            else ["-newkey", "rsa:2048"]
        _run("openssl", "req", *newkey, "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={names[0]}")
        san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:false\n"
                    f"keyUsage=critical,digitalSignature{',keyEncipherment' if kind != 'ec' else ''}"
                    f"\nextendedKeyUsage=serverAuth\n")
        self.serial += 1
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-set_serial", str(self.serial), "-out", crt, "-days", str(days), "-extfile", ext)
        with open(chain, "w") as out, open(crt) as a, open(self.cert) as b:
            out.write(a.read() + b.read())
        return chain, key

    @staticmethod
    def spki_sha256_b64(cert_pem):
        """base64(SHA-256(SubjectPublicKeyInfo)) of the first certificate in `cert_pem`."""
        pub = subprocess.run(["openssl", "x509", "-in", cert_pem, "-pubkey", "-noout"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                             check=True, capture_output=True).stdout
        digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                                check=True, capture_output=True).stdout
        return base64.b64encode(digest).decode()
