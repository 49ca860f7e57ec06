/*
 * ovn_proto: reference C99 encoder/decoder for the OVN metering-node wire protocol.
 *
 * The source of truth is the TypeScript in firmware-protocol/src (messages.ts holds the
 * message table, codec.ts the frame layout); firmware-protocol/vectors.json holds golden
 * frames, and test/firmware-c.test.ts checks this code against them.
 *
 * No malloc, no libc beyond <stdint.h>, <stddef.h> and <string.h>; fits an AVR, ESP32 or RP2040.
 * Not thread-safe per object: use one ovn_framer_t per serial port.
 *
 * Wire frame:  COBS( version u8 | type u8 | seq u16 | payload | crc u16 ) 0x00
 *   - every integer is unsigned little-endian;
 *   - crc is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over version..payload;
 *   - str and bytes fields are a u8 length followed by that many bytes (str: UTF-8);
 *   - a receiver ignores payload bytes after the fields it knows (newer senders may append).
 *
 * Receiving:  ovn_framer_t rx; ovn_framer_init(&rx);
 *             for each byte b from the UART: r = ovn_framer_push(&rx, b, &msg);
 *             r == 1: msg holds a message; r < 0: a frame was rejected (ovn_error_name(r)).
 * Sending:    ovn_msg_t m = {0}; m.type = OVN_ACK; m.seq = ...; m.u.ack.ack_seq = ...;
 *             n = ovn_encode(&m, buf, sizeof buf); if (n > 0) uart_write(buf, n);
 */
#ifndef OVN_PROTO_H
#define OVN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Frame constants (codec.ts) ---- */

#define OVN_PROTOCOL_VERSION 1u
#define OVN_HEADER_SIZE 4u   /* version, type, seq */
#define OVN_CRC_SIZE 2u
#define OVN_MAX_PAYLOAD 240u
/** Largest frame before COBS: header + payload + CRC (246). */
#define OVN_MAX_FRAME (OVN_HEADER_SIZE + OVN_MAX_PAYLOAD + OVN_CRC_SIZE)
/** Upper bound of the COBS encoding of n bytes (no delimiter). */
#define OVN_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)
/** Largest frame on the wire, COBS overhead and 0x00 delimiter included (248). A buffer this big always fits ovn_encode's output. */
#define OVN_MAX_WIRE_FRAME (OVN_COBS_MAX_ENCODED(OVN_MAX_FRAME) + 1u)

/* ---- Error codes: negative return values. -1..-7 are the protocol's frame errors, in codec.ts order. ---- */

enum {
  OVN_OK = 0,
  OVN_ERR_OVERSIZED = -1,    /* "oversized": frame longer than OVN_MAX_WIRE_FRAME */
  OVN_ERR_COBS = -2,         /* "cobs": invalid COBS code */
  OVN_ERR_SHORT = -3,        /* "short": fewer bytes than header + CRC */
  OVN_ERR_CRC = -4,          /* "crc": CRC mismatch */
  OVN_ERR_VERSION = -5,      /* "version": not OVN_PROTOCOL_VERSION */
  OVN_ERR_UNKNOWN_TYPE = -6, /* "unknown-type": no such message code */
  OVN_ERR_PAYLOAD = -7,      /* "payload": payload ends early, or a str/bytes field is longer than its maximum */
  OVN_ERR_BUFFER = -8        /* "buffer": (encoder only) output buffer too small */
};

/** Name of an error code as used by the TypeScript side ("crc", "payload", ...); "ok" for 0, "?" if unknown. */
const char *ovn_error_name(int err);

/* ---- Message codes (messages.ts) ---- */

typedef enum {
  OVN_HELLO = 0x01,       /* node -> gateway, reliable */
  OVN_HEARTBEAT = 0x02,   /* node -> gateway */
  OVN_BADGE = 0x03,       /* node -> gateway, reliable */
  OVN_RELAY_STATE = 0x04, /* node -> gateway, reliable */
  OVN_METER = 0x05,       /* node -> gateway */
  OVN_INPUT = 0x06,       /* node -> gateway, reliable */
  OVN_FAULT = 0x07,       /* node -> gateway, reliable */
  OVN_RELAY_SET = 0x20,   /* gateway -> node, reliable */
  OVN_INDICATE = 0x21,    /* gateway -> node, reliable */
  OVN_REQUEST = 0x22,     /* gateway -> node, reliable */
  OVN_ACK = 0x7e,         /* either way */
  OVN_NACK = 0x7f         /* either way */
} ovn_type_t;

/* Maximum lengths in bytes of the str and bytes fields. */
#define OVN_HELLO_NODE_ID_MAX 32u
#define OVN_HELLO_FIRMWARE_MAX 24u
#define OVN_BADGE_UID_MAX 10u
#define OVN_FAULT_TEXT_MAX 64u
#define OVN_INDICATE_TEXT_MAX 32u

/* ---- Values carried in fields (messages.ts) ---- */

/* HELLO.capabilities bits */
#define OVN_CAPABILITY_BADGE_READER 0x01u
#define OVN_CAPABILITY_RELAY 0x02u
#define OVN_CAPABILITY_RELAY_SENSE 0x04u
#define OVN_CAPABILITY_ENERGY_METER 0x08u
#define OVN_CAPABILITY_BUSY_INPUT 0x10u
#define OVN_CAPABILITY_FILAMENT_ENCODER 0x20u
#define OVN_CAPABILITY_INDICATOR 0x40u
#define OVN_CAPABILITY_DISPLAY 0x80u
/* HELLO.reset_cause */
#define OVN_RESET_CAUSE_UNKNOWN 0u
#define OVN_RESET_CAUSE_POWER_ON 1u
#define OVN_RESET_CAUSE_BROWN_OUT 2u
#define OVN_RESET_CAUSE_WATCHDOG 3u
#define OVN_RESET_CAUSE_SOFTWARE 4u
#define OVN_RESET_CAUSE_EXTERNAL 5u
#define OVN_RESET_CAUSE_FIRMWARE_UPDATE 6u
/* HEARTBEAT.flags bits */
#define OVN_HEARTBEAT_FLAG_RELAY_REQUESTED 0x01u
#define OVN_HEARTBEAT_FLAG_RELAY_SENSED 0x02u
#define OVN_HEARTBEAT_FLAG_BUSY 0x04u
#define OVN_HEARTBEAT_FLAG_FAULT_ACTIVE 0x08u
#define OVN_HEARTBEAT_FLAG_READER_OK 0x10u
/* BADGE.reader */
#define OVN_READER_UNKNOWN 0u
#define OVN_READER_EM4100 1u
#define OVN_READER_ISO14443A 2u
#define OVN_READER_ISO15693 3u
#define OVN_READER_HID_PROX 4u
/* RELAY_STATE.sensed */
#define OVN_RELAY_SENSED_OFF 0u
#define OVN_RELAY_SENSED_ON 1u
#define OVN_RELAY_SENSED_UNKNOWN 2u
/* RELAY_SET.reason, RELAY_STATE.reason */
#define OVN_RELAY_REASON_UNSPECIFIED 0u
#define OVN_RELAY_REASON_SESSION_START 1u
#define OVN_RELAY_REASON_SESSION_END 2u
#define OVN_RELAY_REASON_IDLE_TIMEOUT 3u
#define OVN_RELAY_REASON_MAINTAINER 4u
#define OVN_RELAY_REASON_FAULT 5u
#define OVN_RELAY_REASON_GATEWAY_SHUTDOWN 6u
#define OVN_RELAY_REASON_MAX_DURATION 7u
/* RELAY_STATE.reason when the node switched the relay by itself */
#define OVN_NODE_RELAY_REASON_LOCAL_BUTTON 16u
#define OVN_NODE_RELAY_REASON_NODE_BOOT 17u
#define OVN_NODE_RELAY_REASON_OVERCURRENT 18u
#define OVN_NODE_RELAY_REASON_LINK_LOST 19u
/* INPUT.inputs and INPUT.changed bits */
#define OVN_INPUT_BIT_BUSY 0x01u
#define OVN_INPUT_BIT_DOOR 0x02u
#define OVN_INPUT_BIT_ESTOP 0x04u
/* FAULT.severity */
#define OVN_FAULT_SEVERITY_NONE 0u
#define OVN_FAULT_SEVERITY_WARNING 1u
#define OVN_FAULT_SEVERITY_ERROR 2u
#define OVN_FAULT_SEVERITY_CRITICAL 3u
/* INDICATE.pattern */
#define OVN_INDICATE_PATTERN_OFF 0u
#define OVN_INDICATE_PATTERN_GRANTED 1u
#define OVN_INDICATE_PATTERN_DENIED 2u
#define OVN_INDICATE_PATTERN_WARNING 3u
#define OVN_INDICATE_PATTERN_ERROR 4u
#define OVN_INDICATE_PATTERN_INFO 5u
/* REQUEST.what */
#define OVN_REQUEST_WHAT_HELLO 1u
#define OVN_REQUEST_WHAT_METER 2u
#define OVN_REQUEST_WHAT_RELAY_STATE 3u
#define OVN_REQUEST_WHAT_INPUT 4u
/* NACK.reason */
#define OVN_NACK_REASON_NONE 0u
#define OVN_NACK_REASON_UNKNOWN_TYPE 1u
#define OVN_NACK_REASON_BAD_PAYLOAD 2u
#define OVN_NACK_REASON_UNSUPPORTED_VERSION 3u
#define OVN_NACK_REASON_REFUSED 4u
#define OVN_NACK_REASON_INVALID_STATE 5u

/* ---- Messages: one struct per type, fields in wire order, named like messages.ts in snake_case ---- */

/* A str field: len bytes of UTF-8 in data. The decoder also NUL-terminates data; the encoder sends exactly len bytes. */
#define OVN_STR(max) struct { uint8_t len; char data[(max) + 1u]; }
/* A bytes field: len bytes in data. */
#define OVN_BYTES(max) struct { uint8_t len; uint8_t data[(max)]; }

typedef struct {
  OVN_STR(OVN_HELLO_NODE_ID_MAX) node_id;
  OVN_STR(OVN_HELLO_FIRMWARE_MAX) firmware;
  uint8_t protocol;
  uint16_t capabilities;
  uint8_t reset_cause;
  uint32_t boot_id;
  uint16_t heartbeat_s;
} ovn_hello_t;

typedef struct {
  uint32_t boot_id;
  uint32_t uptime_s;
  uint8_t flags;
} ovn_heartbeat_t;

typedef struct {
  uint8_t reader;
  OVN_BYTES(OVN_BADGE_UID_MAX) uid;
} ovn_badge_t;

typedef struct {
  uint8_t requested;
  uint8_t sensed;
  uint8_t reason;
} ovn_relay_state_t;

typedef struct {
  uint32_t boot_id;
  uint32_t energy_mwh;
  uint32_t relay_on_s;
  uint32_t active_s;
  uint32_t power_mw;
  uint16_t current_ma;
  uint16_t voltage_dv;
  uint32_t filament_mm;
} ovn_meter_t;

typedef struct {
  uint16_t inputs;
  uint16_t changed;
} ovn_input_t;

typedef struct {
  uint16_t code;
  uint8_t severity;
  uint8_t active;
  OVN_STR(OVN_FAULT_TEXT_MAX) text;
} ovn_fault_t;

typedef struct {
  uint8_t state;
  uint8_t reason;
} ovn_relay_set_t;

typedef struct {
  uint8_t pattern;
  uint16_t duration_ms;
  OVN_STR(OVN_INDICATE_TEXT_MAX) text;
} ovn_indicate_t;

typedef struct {
  uint8_t what;
} ovn_request_t;

typedef struct {
  uint16_t ack_seq;
  uint8_t ack_type;
} ovn_ack_t;

typedef struct {
  uint16_t ack_seq;
  uint8_t ack_type;
  uint8_t reason;
} ovn_nack_t;

/** A message: `type` (an ovn_type_t code) says which member of `u` is in use. */
typedef struct {
  uint8_t type;
  uint16_t seq;
  union {
    ovn_hello_t hello;
    ovn_heartbeat_t heartbeat;
    ovn_badge_t badge;
    ovn_relay_state_t relay_state;
    ovn_meter_t meter;
    ovn_input_t input;
    ovn_fault_t fault;
    ovn_relay_set_t relay_set;
    ovn_indicate_t indicate;
    ovn_request_t request;
    ovn_ack_t ack;
    ovn_nack_t nack;
  } u;
} ovn_msg_t;

/** Sets a str field from a NUL-terminated string: OVN_SET_STR(m.u.hello.node_id, "node-1"). 0, or OVN_ERR_PAYLOAD (field left empty) if too long. */
#define OVN_SET_STR(field, s) ovn_set_str(&(field).len, (field).data, sizeof((field).data) - 1u, (s))
/** Sets a bytes field: OVN_SET_BYTES(m.u.badge.uid, uid, uid_len). 0, or OVN_ERR_PAYLOAD (field left empty) if too long. */
#define OVN_SET_BYTES(field, p, n) ovn_set_bytes(&(field).len, (field).data, sizeof((field).data), (p), (n))
int ovn_set_str(uint8_t *len, char *data, size_t max, const char *s);
int ovn_set_bytes(uint8_t *len, uint8_t *data, size_t max, const uint8_t *src, size_t n);

/* ---- Encoder / decoder ---- */

/**
 * Encodes msg as wire bytes into out, trailing 0x00 delimiter included. Returns the number of
 * bytes written, or OVN_ERR_UNKNOWN_TYPE (msg->type), OVN_ERR_PAYLOAD (a str/bytes len over its
 * maximum) or OVN_ERR_BUFFER (cap too small; cap >= OVN_MAX_WIRE_FRAME always suffices).
 * Uses no buffer besides out: the frame is built in out and COBS-stuffed in place.
 */
int ovn_encode(const ovn_msg_t *msg, uint8_t *out, size_t cap);

/**
 * Decodes one wire frame (COBS bytes, with or without the trailing 0x00) into *msg.
 * Returns 0, or a negative OVN_ERR_* (-1..-7); on error *msg is unspecified.
 * Needs OVN_MAX_FRAME bytes of stack; ovn_framer_push decodes in its own buffer instead.
 */
int ovn_decode(const uint8_t *frame, size_t len, ovn_msg_t *msg);

/** Decodes one un-stuffed frame (version..CRC, len bytes). Returns 0 or a negative OVN_ERR_*. */
int ovn_decode_raw(const uint8_t *raw, size_t len, ovn_msg_t *msg);

/* ---- Stream framer: bytes in, messages out ---- */

/**
 * Byte-at-a-time receiver. Holds at most one wire frame (OVN_MAX_WIRE_FRAME - 1 bytes before
 * the delimiter); a longer frame is rejected as OVN_ERR_OVERSIZED once and dropped up to the next
 * 0x00, which is also how it resynchronises after line noise. Zero-initialise or ovn_framer_init.
 */
typedef struct {
  uint8_t buf[OVN_MAX_WIRE_FRAME - 1u];
  uint16_t len;
  uint8_t discarding;
} ovn_framer_t;

void ovn_framer_init(ovn_framer_t *f);

/**
 * Feeds one received byte. Returns 1 when the byte completed a valid frame (then *out holds the
 * message), 0 when no frame ended, or a negative OVN_ERR_* when a frame was rejected (then *out
 * is unspecified). Never blocks; call it from the UART receive loop (not from two contexts at once).
 */
int ovn_framer_push(ovn_framer_t *f, uint8_t byte, ovn_msg_t *out);

/* ---- Receiving: duplicates and replays (PROTOCOL.md §7) ---- */

/** How many sequence numbers, counting back from the newest, a receiver remembers. */
#define OVN_REPLAY_WINDOW 32u

/** Verdicts of ovn_replay_check. */
enum {
  OVN_REPLAY_NEW = 0,       /* not seen: act on it */
  OVN_REPLAY_DUPLICATE = 1, /* seen within the window: acknowledge a reliable one again, do not act on it */
  OVN_REPLAY_OLD = 2        /* further back than the window: a replay from a peer whose numbering is known (the gateway, within one
                               node boot); new to a node, since the gateway numbers from a random value at every port open */
};

/**
 * The sequence numbers seen from one peer in one sequence space: the newest (top) and, in bit i of
 * seen, whether top - i was seen. Zero-initialise or ovn_replay_init; start afresh when the peer
 * starts a new sequence space (a node's new boot).
 */
typedef struct {
  uint16_t top;
  uint32_t seen;
  uint8_t started;
} ovn_replay_t;

void ovn_replay_init(ovn_replay_t *w);

/** The verdict on a received frame's seq (OVN_REPLAY_*); the window takes it in when it is new. */
int ovn_replay_check(ovn_replay_t *w, uint16_t seq);

/* ---- Counters and boots (PROTOCOL.md §8) ---- */

/*
 * A node restarts its counters at zero at every boot and picks a new random boot_id, never 0 (a
 * hardware RNG, or ADC noise mixed with a boot counter kept in EEPROM). Counters are u32 and wrap
 * to 0; the receiver takes each one's growth modulo 2^32 and checks it against what the tool
 * could have done since (the gateway's plausibility check, PROTOCOL.md §8).
 */

/** How far a u32 counter went from last to now: (now - last) mod 2^32. A counter that went down reads as almost 2^32. */
uint32_t ovn_counter_growth(uint32_t last, uint32_t now);

/** How many boots before the current one a receiver remembers. */
#define OVN_PAST_BOOTS 8u

/** Verdicts of ovn_boot_check. */
enum {
  OVN_BOOT_CURRENT = 0, /* the current boot */
  OVN_BOOT_NEW = 1,     /* a boot not seen: it starts (the previous one is closed at its last counters) */
  OVN_BOOT_STALE = 2    /* one of the OVN_PAST_BOOTS before it: a late or replayed frame, never a reboot */
};

/** A node's current boot and the ones before it, newest first. Zero-initialise or ovn_boots_init. */
typedef struct {
  uint32_t current;
  uint32_t past[OVN_PAST_BOOTS];
  uint8_t npast;
  uint8_t started;
} ovn_boots_t;

void ovn_boots_init(ovn_boots_t *b);

/** The verdict on a frame naming boot_id (OVN_BOOT_*); a new boot becomes the current one. */
int ovn_boot_check(ovn_boots_t *b, uint32_t boot_id);

/* ---- Building blocks ---- */

#define OVN_CRC16_INIT 0xFFFFu
/** CRC-16/CCITT-FALSE of len bytes; ovn_crc16("123456789", 9) == 0x29B1. */
uint16_t ovn_crc16(const uint8_t *data, size_t len);
/** One byte of CRC-16/CCITT-FALSE, for computing it on the fly: start from OVN_CRC16_INIT. */
uint16_t ovn_crc16_update(uint16_t crc, uint8_t byte);

/**
 * COBS-encodes len bytes (no delimiter appended). Returns the encoded length, or 0 if cap is too
 * small. dst may overlap src as dst == src - 1 when src has no run of 254 non-zero bytes (always
 * true for frames of this protocol, which are at most 246 bytes).
 */
size_t ovn_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/**
 * Decodes len COBS bytes (no delimiter). Returns the decoded length, or OVN_ERR_COBS when a code
 * byte is 0, points past the end, or the output would exceed cap. dst may equal src (in place).
 * Lengths must fit an int.
 */
int ovn_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/* ---- The message table, for generic code (logging, tests) ---- */

typedef enum { OVN_KIND_U8, OVN_KIND_U16, OVN_KIND_U32, OVN_KIND_STR, OVN_KIND_BYTES } ovn_kind_t;
typedef enum { OVN_FROM_NODE = 1, OVN_FROM_GATEWAY = 2, OVN_FROM_EITHER = 3 } ovn_from_t;

typedef struct {
  uint8_t kind;   /* ovn_kind_t */
  uint8_t max;    /* str/bytes: maximum length; else 0 */
  uint8_t offset; /* offset of the field in the type's struct (the ovn_msg_t.u member) */
} ovn_field_t;

typedef struct {
  uint8_t code;     /* ovn_type_t */
  uint8_t from;     /* ovn_from_t */
  uint8_t reliable; /* 1: acknowledged with ACK/NACK and retransmitted until it is */
  uint8_t nfields;
  const ovn_field_t *fields; /* in wire order */
} ovn_msg_info_t;

/** Table entry for a message code, or NULL if there is no such message. */
const ovn_msg_info_t *ovn_msg_info(uint8_t type);

/*
 * Names as in messages.ts ("RELAY_SET") and in this header ("duration_ms"). Define OVN_NO_NAMES
 * when compiling ovn_proto.c to leave the name strings out (they return "").
 */
const char *ovn_type_name(uint8_t type);
const char *ovn_field_name(uint8_t type, unsigned index);

#ifdef __cplusplus
}
#endif

#endif /* OVN_PROTO_H */
