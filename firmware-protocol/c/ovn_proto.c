/*
 * ovn_proto: reference C99 encoder/decoder for the OVN metering-node wire protocol.
 * See ovn_proto.h for usage; the TypeScript in firmware-protocol/src is the source of truth.
 *
 * Written for 8-bit targets too: every shift is done on an explicitly unsigned type wide enough
 * for the result (int may be 16 bits), and no buffer besides the caller's is larger than a frame.
 */
#include "ovn_proto.h"

#include <string.h>

/* C99 compile-time check. */
#define OVN_ASSERT(name, cond) typedef char ovn_assert_##name[(cond) ? 1 : -1]

/* The generic code below finds a str/bytes field's data one byte after its len. */
#define OVN_ASSERT_VAR(T, m) OVN_ASSERT(T##_##m, offsetof(T, m.data) == offsetof(T, m.len) + 1u)
OVN_ASSERT_VAR(ovn_hello_t, node_id);
OVN_ASSERT_VAR(ovn_hello_t, firmware);
OVN_ASSERT_VAR(ovn_badge_t, uid);
OVN_ASSERT_VAR(ovn_fault_t, text);
OVN_ASSERT_VAR(ovn_indicate_t, text);
/* Field offsets are stored in a uint8_t. */
OVN_ASSERT(union_size, sizeof(((ovn_msg_t *)0)->u) < 256u);
/* Frames are shorter than a 254-byte COBS run: the COBS output is exactly one byte longer. */
OVN_ASSERT(frame_below_cobs_run, OVN_MAX_FRAME < 254u);

/* ---- Message table: mirrors MESSAGES in messages.ts (codes, field order, kinds, maxima) ---- */

#define U8(T, m) { OVN_KIND_U8, 0u, (uint8_t)offsetof(T, m) }
#define U16(T, m) { OVN_KIND_U16, 0u, (uint8_t)offsetof(T, m) }
#define U32(T, m) { OVN_KIND_U32, 0u, (uint8_t)offsetof(T, m) }
#define STR(T, m, max) { OVN_KIND_STR, (max), (uint8_t)offsetof(T, m) }
#define BYTES(T, m, max) { OVN_KIND_BYTES, (max), (uint8_t)offsetof(T, m) }

static const ovn_field_t HELLO_FIELDS[] = {
  STR(ovn_hello_t, node_id, OVN_HELLO_NODE_ID_MAX), STR(ovn_hello_t, firmware, OVN_HELLO_FIRMWARE_MAX),
  U8(ovn_hello_t, protocol), U16(ovn_hello_t, capabilities), U8(ovn_hello_t, reset_cause),
  U32(ovn_hello_t, boot_id), U16(ovn_hello_t, heartbeat_s),
};
static const ovn_field_t HEARTBEAT_FIELDS[] = {
  U32(ovn_heartbeat_t, boot_id), U32(ovn_heartbeat_t, uptime_s), U8(ovn_heartbeat_t, flags),
};
static const ovn_field_t BADGE_FIELDS[] = {
  U8(ovn_badge_t, reader), BYTES(ovn_badge_t, uid, OVN_BADGE_UID_MAX),
};
static const ovn_field_t RELAY_STATE_FIELDS[] = {
  U8(ovn_relay_state_t, requested), U8(ovn_relay_state_t, sensed), U8(ovn_relay_state_t, reason),
};
static const ovn_field_t METER_FIELDS[] = {
  U32(ovn_meter_t, boot_id), U32(ovn_meter_t, energy_mwh), U32(ovn_meter_t, relay_on_s), U32(ovn_meter_t, active_s),
  U32(ovn_meter_t, power_mw), U16(ovn_meter_t, current_ma), U16(ovn_meter_t, voltage_dv), U32(ovn_meter_t, filament_mm),
};
static const ovn_field_t INPUT_FIELDS[] = {
  U16(ovn_input_t, inputs), U16(ovn_input_t, changed),
};
static const ovn_field_t FAULT_FIELDS[] = {
  U16(ovn_fault_t, code), U8(ovn_fault_t, severity), U8(ovn_fault_t, active), STR(ovn_fault_t, text, OVN_FAULT_TEXT_MAX),
};
static const ovn_field_t RELAY_SET_FIELDS[] = {
  U8(ovn_relay_set_t, state), U8(ovn_relay_set_t, reason),
};
static const ovn_field_t INDICATE_FIELDS[] = {
  U8(ovn_indicate_t, pattern), U16(ovn_indicate_t, duration_ms), STR(ovn_indicate_t, text, OVN_INDICATE_TEXT_MAX),
};
static const ovn_field_t REQUEST_FIELDS[] = {
  U8(ovn_request_t, what),
};
static const ovn_field_t ACK_FIELDS[] = {
  U16(ovn_ack_t, ack_seq), U8(ovn_ack_t, ack_type),
};
static const ovn_field_t NACK_FIELDS[] = {
  U16(ovn_nack_t, ack_seq), U8(ovn_nack_t, ack_type), U8(ovn_nack_t, reason),
};

#define N(a) ((uint8_t)(sizeof(a) / sizeof((a)[0])))
#define MSG(code, from, reliable, fields) { (code), (from), (reliable), N(fields), (fields) }

static const ovn_msg_info_t MSGS[] = {
  MSG(OVN_HELLO, OVN_FROM_NODE, 1u, HELLO_FIELDS),
  MSG(OVN_HEARTBEAT, OVN_FROM_NODE, 0u, HEARTBEAT_FIELDS),
  MSG(OVN_BADGE, OVN_FROM_NODE, 1u, BADGE_FIELDS),
  MSG(OVN_RELAY_STATE, OVN_FROM_NODE, 1u, RELAY_STATE_FIELDS),
  MSG(OVN_METER, OVN_FROM_NODE, 0u, METER_FIELDS),
  MSG(OVN_INPUT, OVN_FROM_NODE, 1u, INPUT_FIELDS),
  MSG(OVN_FAULT, OVN_FROM_NODE, 1u, FAULT_FIELDS),
  MSG(OVN_RELAY_SET, OVN_FROM_GATEWAY, 1u, RELAY_SET_FIELDS),
  MSG(OVN_INDICATE, OVN_FROM_GATEWAY, 1u, INDICATE_FIELDS),
  MSG(OVN_REQUEST, OVN_FROM_GATEWAY, 1u, REQUEST_FIELDS),
  MSG(OVN_ACK, OVN_FROM_EITHER, 0u, ACK_FIELDS),
  MSG(OVN_NACK, OVN_FROM_EITHER, 0u, NACK_FIELDS),
};

const ovn_msg_info_t *ovn_msg_info(uint8_t type) {
  uint8_t i;
  for (i = 0; i < N(MSGS); i++) {
    if (MSGS[i].code == type) return &MSGS[i];
  }
  return NULL;
}

#ifndef OVN_NO_NAMES
/* Same order as MSGS. */
static const char *const TYPE_NAMES[] = {
  "HELLO", "HEARTBEAT", "BADGE", "RELAY_STATE", "METER", "INPUT", "FAULT", "RELAY_SET", "INDICATE", "REQUEST", "ACK", "NACK",
};
static const char *const HELLO_NAMES[] = { "node_id", "firmware", "protocol", "capabilities", "reset_cause", "boot_id", "heartbeat_s" };
static const char *const HEARTBEAT_NAMES[] = { "boot_id", "uptime_s", "flags" };
static const char *const BADGE_NAMES[] = { "reader", "uid" };
static const char *const RELAY_STATE_NAMES[] = { "requested", "sensed", "reason" };
static const char *const METER_NAMES[] = {
  "boot_id", "energy_mwh", "relay_on_s", "active_s", "power_mw", "current_ma", "voltage_dv", "filament_mm",
};
static const char *const INPUT_NAMES[] = { "inputs", "changed" };
static const char *const FAULT_NAMES[] = { "code", "severity", "active", "text" };
static const char *const RELAY_SET_NAMES[] = { "state", "reason" };
static const char *const INDICATE_NAMES[] = { "pattern", "duration_ms", "text" };
static const char *const REQUEST_NAMES[] = { "what" };
static const char *const ACK_NAMES[] = { "ack_seq", "ack_type" };
static const char *const NACK_NAMES[] = { "ack_seq", "ack_type", "reason" };
static const char *const *const FIELD_NAMES[] = {
  HELLO_NAMES, HEARTBEAT_NAMES, BADGE_NAMES, RELAY_STATE_NAMES, METER_NAMES, INPUT_NAMES,
  FAULT_NAMES, RELAY_SET_NAMES, INDICATE_NAMES, REQUEST_NAMES, ACK_NAMES, NACK_NAMES,
};
#define OVN_ASSERT_NAMES(T) OVN_ASSERT(T##_names, N(T##_NAMES) == N(T##_FIELDS))
OVN_ASSERT_NAMES(HELLO);
OVN_ASSERT_NAMES(HEARTBEAT);
OVN_ASSERT_NAMES(BADGE);
OVN_ASSERT_NAMES(RELAY_STATE);
OVN_ASSERT_NAMES(METER);
OVN_ASSERT_NAMES(INPUT);
OVN_ASSERT_NAMES(FAULT);
OVN_ASSERT_NAMES(RELAY_SET);
OVN_ASSERT_NAMES(INDICATE);
OVN_ASSERT_NAMES(REQUEST);
OVN_ASSERT_NAMES(ACK);
OVN_ASSERT_NAMES(NACK);
OVN_ASSERT(type_names, N(TYPE_NAMES) == N(MSGS));
OVN_ASSERT(field_names, N(FIELD_NAMES) == N(MSGS));
#endif

const char *ovn_type_name(uint8_t type) {
#ifndef OVN_NO_NAMES
  const ovn_msg_info_t *info = ovn_msg_info(type);
  if (info != NULL) return TYPE_NAMES[info - MSGS];
#else
  (void)type;
#endif
  return "";
}

const char *ovn_field_name(uint8_t type, unsigned index) {
#ifndef OVN_NO_NAMES
  const ovn_msg_info_t *info = ovn_msg_info(type);
  if (info != NULL && index < info->nfields) return FIELD_NAMES[info - MSGS][index];
#else
  (void)type;
  (void)index;
#endif
  return "";
}

const char *ovn_error_name(int err) {
  switch (err) {
    case OVN_OK: return "ok";
    case OVN_ERR_OVERSIZED: return "oversized";
    case OVN_ERR_COBS: return "cobs";
    case OVN_ERR_SHORT: return "short";
    case OVN_ERR_CRC: return "crc";
    case OVN_ERR_VERSION: return "version";
    case OVN_ERR_UNKNOWN_TYPE: return "unknown-type";
    case OVN_ERR_PAYLOAD: return "payload";
    case OVN_ERR_BUFFER: return "buffer";
    default: return "?";
  }
}

int ovn_set_str(uint8_t *len, char *data, size_t max, const char *s) {
  size_t n = strlen(s);
  if (n > max) {
    *len = 0;
    data[0] = '\0';
    return OVN_ERR_PAYLOAD;
  }
  memcpy(data, s, n + 1u);
  *len = (uint8_t)n;
  return OVN_OK;
}

int ovn_set_bytes(uint8_t *len, uint8_t *data, size_t max, const uint8_t *src, size_t n) {
  if (n > max) {
    *len = 0;
    return OVN_ERR_PAYLOAD;
  }
  if (n > 0u) memcpy(data, src, n);
  *len = (uint8_t)n;
  return OVN_OK;
}

/* ---- CRC-16/CCITT-FALSE (crc16.ts), bitwise: no 512-byte table ---- */

uint16_t ovn_crc16_update(uint16_t crc, uint8_t byte) {
  uint8_t k;
  crc = (uint16_t)(crc ^ (uint16_t)((uint16_t)byte << 8));
  for (k = 0; k < 8u; k++) {
    crc = (crc & 0x8000u) ? (uint16_t)((uint16_t)(crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
  }
  return crc;
}

uint16_t ovn_crc16(const uint8_t *data, size_t len) {
  uint16_t crc = OVN_CRC16_INIT;
  size_t i;
  for (i = 0; i < len; i++) crc = ovn_crc16_update(crc, data[i]);
  return crc;
}

/* ---- COBS (cobs.ts) ---- */

size_t ovn_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap) {
  size_t code_at = 0, out = 1, i;
  uint8_t code = 1;
  if (cap < 1u) return 0;
  for (i = 0; i < len; i++) {
    uint8_t b = src[i]; /* read before any write: with dst == src - 1, dst[out] may be src[i] */
    if (b == 0u) {
      dst[code_at] = code;
      code_at = out++;
      code = 1;
      if (code_at >= cap) return 0;
    } else {
      if (out >= cap) return 0;
      dst[out++] = b;
      if (++code == 0xFFu) {
        dst[code_at] = code;
        code_at = out++;
        code = 1;
        if (code_at >= cap) return 0;
      }
    }
  }
  dst[code_at] = code;
  return out;
}

int ovn_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap) {
  size_t i = 0, out = 0;
  while (i < len) {
    uint8_t code = src[i], k;
    if (code == 0u || code > len - i) return OVN_ERR_COBS;
    i++;
    for (k = 1; k < code; k++) {
      if (out >= cap) return OVN_ERR_COBS;
      dst[out++] = src[i++];
    }
    if (code != 0xFFu && i < len) {
      if (out >= cap) return OVN_ERR_COBS;
      dst[out++] = 0;
    }
  }
  return (int)out;
}

/* ---- Field access ---- */

static uint32_t get_le(const uint8_t *p, uint8_t size) {
  uint32_t v = 0;
  while (size > 0u) {
    size--;
    v = (v << 8) | p[size];
  }
  return v;
}

static void put_le(uint8_t *p, uint32_t v, uint8_t size) {
  uint8_t k;
  for (k = 0; k < size; k++) {
    p[k] = (uint8_t)(v & 0xFFu);
    v >>= 8;
  }
}

static uint8_t int_size(uint8_t kind) {
  return kind == OVN_KIND_U8 ? 1u : kind == OVN_KIND_U16 ? 2u : 4u;
}

static uint32_t load_int(const uint8_t *at, uint8_t kind) {
  switch (kind) {
    case OVN_KIND_U8: return *at;
    case OVN_KIND_U16: return *(const uint16_t *)(const void *)at;
    default: return *(const uint32_t *)(const void *)at;
  }
}

static void store_int(uint8_t *at, uint8_t kind, uint32_t v) {
  switch (kind) {
    case OVN_KIND_U8: *at = (uint8_t)v; break;
    case OVN_KIND_U16: *(uint16_t *)(void *)at = (uint16_t)v; break;
    default: *(uint32_t *)(void *)at = v; break;
  }
}

/* ---- Encoder (encodeFrame in codec.ts) ---- */

int ovn_encode(const ovn_msg_t *msg, uint8_t *out, size_t cap) {
  const ovn_msg_info_t *info = ovn_msg_info(msg->type);
  const uint8_t *base = (const uint8_t *)&msg->u;
  size_t payload = 0, raw_len, o, n;
  uint8_t *raw;
  uint16_t crc;
  uint8_t i;

  if (info == NULL) return OVN_ERR_UNKNOWN_TYPE;
  for (i = 0; i < info->nfields; i++) {
    const ovn_field_t *f = &info->fields[i];
    if (f->kind == OVN_KIND_STR || f->kind == OVN_KIND_BYTES) {
      uint8_t len = base[f->offset];
      if (len > f->max) return OVN_ERR_PAYLOAD;
      payload += 1u + len;
    } else {
      payload += int_size(f->kind);
    }
  }
  if (payload > OVN_MAX_PAYLOAD) return OVN_ERR_PAYLOAD;
  raw_len = OVN_HEADER_SIZE + payload + OVN_CRC_SIZE;
  /* COBS adds one code byte (frames are below 254 bytes), then the delimiter. */
  if (out == NULL || cap < raw_len + 2u) return OVN_ERR_BUFFER;

  /* Build the frame at out + 1 and stuff it in place into out. */
  raw = out + 1;
  raw[0] = (uint8_t)OVN_PROTOCOL_VERSION;
  raw[1] = msg->type;
  put_le(raw + 2, msg->seq, 2);
  o = OVN_HEADER_SIZE;
  for (i = 0; i < info->nfields; i++) {
    const ovn_field_t *f = &info->fields[i];
    const uint8_t *at = base + f->offset;
    if (f->kind == OVN_KIND_STR || f->kind == OVN_KIND_BYTES) {
      raw[o++] = at[0];
      memcpy(raw + o, at + 1, at[0]);
      o += at[0];
    } else {
      uint8_t size = int_size(f->kind);
      put_le(raw + o, load_int(at, f->kind), size);
      o += size;
    }
  }
  crc = ovn_crc16(raw, o);
  put_le(raw + o, crc, 2);

  n = ovn_cobs_encode(raw, raw_len, out, cap - 1u);
  if (n == 0u) return OVN_ERR_BUFFER; /* not reached */
  out[n] = 0;
  return (int)(n + 1u);
}

/* ---- Decoder (decodeRaw / decodeFrame in codec.ts; same checks in the same order) ---- */

int ovn_decode_raw(const uint8_t *raw, size_t len, ovn_msg_t *msg) {
  const ovn_msg_info_t *info;
  uint8_t *base;
  size_t end, o;
  uint8_t i;

  if (len > OVN_MAX_FRAME) return OVN_ERR_OVERSIZED;
  if (len < OVN_HEADER_SIZE + OVN_CRC_SIZE) return OVN_ERR_SHORT;
  end = len - OVN_CRC_SIZE;
  if (get_le(raw + end, 2) != ovn_crc16(raw, end)) return OVN_ERR_CRC;
  if (raw[0] != OVN_PROTOCOL_VERSION) return OVN_ERR_VERSION;
  info = ovn_msg_info(raw[1]);
  if (info == NULL) return OVN_ERR_UNKNOWN_TYPE;

  memset(msg, 0, sizeof *msg);
  msg->type = raw[1];
  msg->seq = (uint16_t)get_le(raw + 2, 2);
  base = (uint8_t *)&msg->u;
  o = OVN_HEADER_SIZE;
  for (i = 0; i < info->nfields; i++) {
    const ovn_field_t *f = &info->fields[i];
    uint8_t *at = base + f->offset;
    if (f->kind == OVN_KIND_STR || f->kind == OVN_KIND_BYTES) {
      uint8_t n;
      if (o + 1u > end) return OVN_ERR_PAYLOAD;
      n = raw[o];
      if (n > f->max) return OVN_ERR_PAYLOAD;
      if (o + 1u + n > end) return OVN_ERR_PAYLOAD;
      at[0] = n;
      memcpy(at + 1, raw + o + 1, n);
      if (f->kind == OVN_KIND_STR) at[1 + n] = 0; /* str data has max + 1 bytes */
      o += 1u + n;
    } else {
      uint8_t size = int_size(f->kind);
      if (o + size > end) return OVN_ERR_PAYLOAD;
      store_int(at, f->kind, get_le(raw + o, size));
      o += size;
    }
  }
  /* Bytes after the known fields are ignored: a newer node may append fields. */
  return OVN_OK;
}

int ovn_decode(const uint8_t *frame, size_t len, ovn_msg_t *msg) {
  uint8_t raw[OVN_MAX_FRAME];
  int n;
  if (frame == NULL) len = 0;
  if (len > 0u && frame[len - 1u] == 0u) len--;
  if (len > OVN_MAX_WIRE_FRAME - 1u) return OVN_ERR_OVERSIZED;
  n = ovn_cobs_decode(frame, len, raw, sizeof raw);
  if (n < 0) return n;
  return ovn_decode_raw(raw, (size_t)n, msg);
}

/* ---- Stream framer (FrameDecoder in framer.ts) ---- */

void ovn_framer_init(ovn_framer_t *f) {
  f->len = 0;
  f->discarding = 0;
}

int ovn_framer_push(ovn_framer_t *f, uint8_t byte, ovn_msg_t *out) {
  int n;
  if (byte != 0u) {
    if (f->discarding) return 0;
    if (f->len >= sizeof f->buf) {
      f->discarding = 1;
      f->len = 0;
      return OVN_ERR_OVERSIZED;
    }
    f->buf[f->len++] = byte;
    return 0;
  }
  if (f->discarding || f->len == 0u) { /* end of a dropped frame, or an empty one */
    f->discarding = 0;
    f->len = 0;
    return 0;
  }
  n = ovn_cobs_decode(f->buf, f->len, f->buf, sizeof f->buf); /* in place */
  f->len = 0;
  if (n < 0) return n;
  n = ovn_decode_raw(f->buf, (size_t)n, out);
  return n < 0 ? n : 1;
}

/* ---- Duplicates and replays ---- */

void ovn_replay_init(ovn_replay_t *w) {
  memset(w, 0, sizeof *w);
}

int ovn_replay_check(ovn_replay_t *w, uint16_t seq) {
  uint16_t ahead, back;
  uint32_t bit;
  if (!w->started) {
    w->started = 1u;
    w->top = seq;
    w->seen = 1u;
    return OVN_REPLAY_NEW;
  }
  ahead = (uint16_t)(seq - w->top);
  if (ahead == 0u) return OVN_REPLAY_DUPLICATE;
  if (ahead < 0x8000u) {
    /* newer: the window slides forward, forgetting what falls out of it */
    w->seen = ahead >= OVN_REPLAY_WINDOW ? 1u : (uint32_t)((w->seen << ahead) | 1u);
    w->top = seq;
    return OVN_REPLAY_NEW;
  }
  back = (uint16_t)(w->top - seq);
  if (back >= OVN_REPLAY_WINDOW) return OVN_REPLAY_OLD;
  bit = (uint32_t)1u << back;
  if (w->seen & bit) return OVN_REPLAY_DUPLICATE;
  w->seen |= bit;
  return OVN_REPLAY_NEW;
}

/* ---- Counters and boots ---- */

uint32_t ovn_counter_growth(uint32_t last, uint32_t now) {
  return (uint32_t)(now - last);
}

void ovn_boots_init(ovn_boots_t *b) {
  memset(b, 0, sizeof *b);
}

int ovn_boot_check(ovn_boots_t *b, uint32_t boot_id) {
  unsigned i;
  if (b->started && boot_id == b->current) return OVN_BOOT_CURRENT;
  for (i = 0; i < b->npast; i++)
    if (b->past[i] == boot_id) return OVN_BOOT_STALE;
  if (b->started) {
    /* the current boot becomes the newest past one; the oldest is forgotten */
    if (b->npast < OVN_PAST_BOOTS) b->npast++;
    for (i = b->npast - 1u; i > 0u; i--) b->past[i] = b->past[i - 1u];
    b->past[0] = b->current;
  }
  b->started = 1u;
  b->current = boot_id;
  return OVN_BOOT_NEW;
}
