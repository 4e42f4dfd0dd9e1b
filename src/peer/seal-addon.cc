// The seal addon (loaded by seal-addon.ts): AES-256-GCM of a chunk straight
// into the caller's buffer, with the SHA-256 of ciphertext || tag taken in
// the same pass. It is the inner loop of sealChunkInto (seal-into.ts) and
// nothing more: key, nonce and the plaintext's hash stay in TypeScript, so
// the format lives in one place. Why it exists: node:crypto's cipher.update
// returns a new zero-filled buffer per call, which ingest then hashes and
// copies into place; measured on 1.18 MiB chunks, that costs ~0.3 CPU ns
// per byte on top of the ~1.35 the cipher and hashes need here (ingest's
// whole budget at its target is ~3.3 on 2 cores).
//
// It calls the OpenSSL that Node itself links and exports (Node's headers
// ship its include files), so the addon adds no library and cannot disagree
// with node:crypto about the algorithms; seal-addon.test.ts checks the bytes
// against node:crypto and noble anyway.
#include <node_api.h>
#include <openssl/evp.h>

#include <cstdint>

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kDigestBytes = 32;
// Ciphertext is hashed piece by piece while it is still in L1/L2; the size
// made no measurable difference between 4 KiB and whole chunks.
constexpr size_t kPieceBytes = 64 * 1024;

napi_value Fail(napi_env env, const char* code, const char* message) {
  napi_throw_error(env, code, message);
  return nullptr;
}

// A Uint8Array argument's bytes (any backing: ArrayBuffer or SharedArrayBuffer).
bool Bytes(napi_env env, napi_value value, const char* label, uint8_t** data, size_t* length) {
  bool isTyped = false;
  napi_typedarray_type type;
  void* raw = nullptr;
  napi_value arrayBuffer;
  size_t offset = 0;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, value, &type, length, &raw, &arrayBuffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", label);
    return false;
  }
  *data = static_cast<uint8_t*>(raw);
  return true;
}

struct CipherContext {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
};

struct DigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
};

// sealInto(key, nonce, plaintext, output): writes ciphertext || tag to
// output[0, plaintext.length + 16) and returns SHA-256 of those bytes as a
// new 32-byte Buffer. output may start at the plaintext's own first byte (in
// place) but must not overlap it otherwise; sealChunkInto (seal-into.ts)
// refuses any other overlap before calling.
napi_value SealInto(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 4) return Fail(env, "ERR_MISSING_ARGS", "sealInto(key, nonce, plaintext, output): expected 4 arguments");
  uint8_t *key, *nonce, *plaintext, *output;
  size_t keyLength, nonceLength, plaintextLength, outputLength;
  if (!Bytes(env, argv[0], "key: expected a Uint8Array", &key, &keyLength)) return nullptr;
  if (!Bytes(env, argv[1], "nonce: expected a Uint8Array", &nonce, &nonceLength)) return nullptr;
  if (!Bytes(env, argv[2], "plaintext: expected a Uint8Array", &plaintext, &plaintextLength)) return nullptr;
  if (!Bytes(env, argv[3], "output: expected a Uint8Array", &output, &outputLength)) return nullptr;
  if (keyLength != kKeyBytes) return Fail(env, "ERR_OUT_OF_RANGE", "key: expected 32 bytes");
  if (nonceLength != kNonceBytes) return Fail(env, "ERR_OUT_OF_RANGE", "nonce: expected 12 bytes");
  if (outputLength < plaintextLength || outputLength - plaintextLength < kTagBytes) {
    return Fail(env, "ERR_OUT_OF_RANGE", "output: too small for ciphertext and tag");
  }

  CipherContext cipher;
  DigestContext digest;
  if (!cipher.ctx || !digest.ctx) return Fail(env, "ERR_OPENSSL", "out of memory");
  int written = 0;
  bool ok = EVP_EncryptInit_ex(cipher.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(cipher.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
            EVP_EncryptInit_ex(cipher.ctx, nullptr, nullptr, key, nonce) == 1 && EVP_DigestInit_ex(digest.ctx, EVP_sha256(), nullptr) == 1;
  for (size_t at = 0; ok && at < plaintextLength; at += kPieceBytes) {
    size_t piece = plaintextLength - at < kPieceBytes ? plaintextLength - at : kPieceBytes;
    ok = EVP_EncryptUpdate(cipher.ctx, output + at, &written, plaintext + at, static_cast<int>(piece)) == 1 && static_cast<size_t>(written) == piece &&
         EVP_DigestUpdate(digest.ctx, output + at, piece) == 1;
  }
  uint8_t* tag = output + plaintextLength;
  ok = ok && EVP_EncryptFinal_ex(cipher.ctx, tag, &written) == 1 && written == 0 &&
       EVP_CIPHER_CTX_ctrl(cipher.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) == 1 && EVP_DigestUpdate(digest.ctx, tag, kTagBytes) == 1;
  uint8_t sha256[kDigestBytes];
  unsigned int digestLength = 0;
  ok = ok && EVP_DigestFinal_ex(digest.ctx, sha256, &digestLength) == 1 && digestLength == kDigestBytes;
  if (!ok) return Fail(env, "ERR_OPENSSL", "aes-256-gcm or sha-256 failed in OpenSSL");

  napi_value result;
  if (napi_create_buffer_copy(env, kDigestBytes, sha256, nullptr, &result) != napi_ok) return nullptr;
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value sealInto;
  if (napi_create_function(env, "sealInto", NAPI_AUTO_LENGTH, SealInto, nullptr, &sealInto) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "sealInto", sealInto) != napi_ok) return nullptr;
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
