/** The room-chat test vectors published in docs/CHAT.md: the doc and the code must agree. */
import assert from "node:assert/strict";
import { x25519 } from "@noble/curves/ed25519.js";
import { boxKey, boxSeal } from "../../src/chat/compat_crypto.ts";
import {
  chatKeyPair,
  checkPeerHello,
  deriveChatKeys,
  helloCommitment,
  RecordType,
  sealRecord,
  x25519Agree,
} from "../../src/chat/room_crypto.ts";
import { toHex, utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { mlkemDecapsulate, mlkemEncapsulate } from "../../src/crypto/kem.ts";

const filled = (byte: number, n: number) => new Uint8Array(n).fill(byte);
/** Each call returns the next byte value repeated: the doc's "all 0x11" inputs. */
const source = (bytes: number[]) => {
  let i = 0;
  return (n: number) => filled(bytes[i++], n);
};
const doc = Deno.readTextFileSync(new URL("../../docs/CHAT.md", import.meta.url));

function inDoc(label: string, hex: string): void {
  assert.ok(doc.includes(hex), `docs/CHAT.md lacks ${label} ${hex}`);
}

Deno.test("room-chat key exchange vectors match docs/CHAT.md", () => {
  const x = chatKeyPair(source([0x11, 0x22]));
  const y = chatKeyPair(source([0x33, 0x44]));
  inDoc("hello X", toHex(sha256(x.hello)));
  inDoc("hello Y", toHex(sha256(y.hello)));
  inDoc("commitment X", toHex(helloCommitment(x.hello)));
  inDoc("commitment Y", toHex(helloCommitment(y.hello)));
  const toY = checkPeerHello(y.hello, helloCommitment(y.hello), x.hello);
  const toX = checkPeerHello(x.hello, helloCommitment(x.hello), y.hello);
  const ctX = mlkemEncapsulate(toY.mlkem, filled(0x55, 32));
  const ctY = mlkemEncapsulate(toX.mlkem, filled(0x66, 32));
  inDoc("ciphertext X", toHex(sha256(ctX.cipherText)));
  inDoc("ciphertext Y", toHex(sha256(ctY.cipherText)));
  const shared = x25519Agree(x.x25519Secret, toY.x25519);
  inDoc("X25519", toHex(shared));
  const kx = deriveChatKeys({
    ourHello: x.hello,
    theirHello: y.hello,
    x25519Shared: shared,
    sentCt: ctX.cipherText,
    sentSecret: ctX.sharedSecret,
    receivedCt: ctY.cipherText,
    receivedSecret: mlkemDecapsulate(ctY.cipherText, x.mlkemSecret),
  });
  const ky = deriveChatKeys({
    ourHello: y.hello,
    theirHello: x.hello,
    x25519Shared: x25519Agree(y.x25519Secret, toX.x25519),
    sentCt: ctY.cipherText,
    sentSecret: ctY.sharedSecret,
    receivedCt: ctX.cipherText,
    receivedSecret: mlkemDecapsulate(ctX.cipherText, y.mlkemSecret),
  });
  assert.deepEqual([toHex(ky.send), toHex(ky.receive)], [toHex(kx.receive), toHex(kx.send)]);
  inDoc("X send key", toHex(kx.send));
  inDoc("Y send key", toHex(ky.send));
  assert.deepEqual(kx.sas, ky.sas);
  assert.ok(doc.includes(kx.sas.join(" ")), `docs/CHAT.md lacks the words ${kx.sas.join(" ")}`);
  const ready = sealRecord(kx.send, 0n, RecordType.ready, new Uint8Array());
  assert.equal(ready.length, 280);
  inDoc("ready record", toHex(sha256(ready)));
  inDoc("text record", toHex(sha256(sealRecord(kx.send, 1n, RecordType.text, utf8("hi")))));
});

Deno.test("compat box vector matches docs/CHAT.md", () => {
  const key = boxKey(filled(0x77, 32), x25519.getPublicKey(filled(0x88, 32)));
  inDoc("box key", toHex(key));
  inDoc("box payload", toHex(boxSeal(key, filled(0x99, 24), utf8("hi"))));
});
