/*
 * check_vectors: drives ovn_proto from the command line so the tests (test/firmware-c.test.ts)
 * can check it against firmware-protocol/vectors.json. A host program: uses stdio.
 *
 *   check_vectors decode   one wire frame in hex per line (trailing 00 optional) ->
 *                          "ok <TYPE> seq=<n> <field>=<value> ..." or "err <error-name>"
 *   check_vectors encode   "<TYPE> seq=<n> <field>=<value> ..." per line -> wire hex incl. trailing 00
 *                          (or "err <error-name>")
 *   check_vectors stream   one hex line, a concatenated byte stream, fed byte by byte to the framer
 *                          -> one "ok ..." / "err ..." line per message or rejection
 *   check_vectors crc      hex per line -> CRC-16/CCITT-FALSE as 4 hex digits
 *   check_vectors table    the message table: "<TYPE> code=<n> from=<f> reliable=<0|1> <field>:<kind>[:max] ..."
 *   check_vectors consts   the error codes and the OVN_* value constants as "NAME=value"
 *   check_vectors replay   seqs per line, through a fresh replay window -> "new"/"duplicate"/"old" per seq
 *   check_vectors growth   "<last> <now>" per line -> the u32 counter's growth
 *   check_vectors boots    boot ids per line, through a fresh boot history -> "new"/"current"/"stale" per id
 *
 * Field values: numbers in decimal; str and bytes as "hex:" followed by lowercase hex of the bytes.
 * Field names are the C ones (snake_case). Build: gcc -std=c99 -o check_vectors ovn_proto.c check_vectors.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovn_proto.h"

/* Reads one line (without the newline) into a growing buffer; NULL at end of input. */
static char *read_line(void) {
  static char *buf = NULL;
  static size_t cap = 0;
  size_t len = 0;
  int c;
  for (;;) {
    c = getchar();
    if (c == EOF || c == '\n') break;
    if (len + 2u > cap) {
      char *grown;
      cap = cap ? cap * 2u : 256u;
      grown = (char *)realloc(buf, cap);
      if (grown == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
      }
      buf = grown;
    }
    buf[len++] = (char)c;
  }
  if (c == EOF && len == 0u) return NULL;
  if (buf == NULL) {
    static char empty[1];
    return empty;
  }
  if (len > 0u && buf[len - 1u] == '\r') len--;
  buf[len] = '\0';
  return buf;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parses hex (whitespace ignored) into out; returns the byte count, or -1 if malformed or over cap. */
static long parse_hex(const char *s, size_t slen, unsigned char *out, size_t cap) {
  size_t n = 0, i;
  int hi = -1;
  for (i = 0; i < slen; i++) {
    int d;
    if (s[i] == ' ' || s[i] == '\t') continue;
    d = hex_digit(s[i]);
    if (d < 0) return -1;
    if (hi < 0) {
      hi = d;
    } else {
      if (n >= cap) return -1;
      out[n++] = (unsigned char)(hi * 16 + d);
      hi = -1;
    }
  }
  return hi < 0 ? (long)n : -1;
}

static void print_hex(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) printf("%02x", p[i]);
}

static void print_message(const ovn_msg_t *m) {
  const ovn_msg_info_t *info = ovn_msg_info(m->type);
  const uint8_t *base = (const uint8_t *)&m->u;
  unsigned i;
  printf("ok %s seq=%u", ovn_type_name(m->type), (unsigned)m->seq);
  for (i = 0; i < info->nfields; i++) {
    const ovn_field_t *f = &info->fields[i];
    const uint8_t *at = base + f->offset;
    printf(" %s=", ovn_field_name(m->type, i));
    switch (f->kind) {
      case OVN_KIND_U8: printf("%u", (unsigned)*at); break;
      case OVN_KIND_U16: printf("%u", (unsigned)*(const uint16_t *)(const void *)at); break;
      case OVN_KIND_U32: printf("%lu", (unsigned long)*(const uint32_t *)(const void *)at); break;
      default:
        printf("hex:");
        print_hex(at + 1, at[0]);
        break;
    }
  }
  printf("\n");
}

static void print_result(int r, const ovn_msg_t *m) {
  if (r < 0) printf("err %s\n", ovn_error_name(r));
  else print_message(m);
}

static int type_by_name(const char *name, size_t len) {
  unsigned code;
  for (code = 0; code < 256u; code++) {
    const char *n = ovn_type_name((uint8_t)code);
    if (ovn_msg_info((uint8_t)code) != NULL && strlen(n) == len && strncmp(n, name, len) == 0) return (int)code;
  }
  return -1;
}

/* Parses "<TYPE> seq=<n> field=value ..." into *m; returns 0 or -1. Missing fields stay 0/empty. */
static int parse_message(char *line, ovn_msg_t *m) {
  const ovn_msg_info_t *info;
  char *tok = strtok(line, " \t");
  int code;
  memset(m, 0, sizeof *m);
  if (tok == NULL || (code = type_by_name(tok, strlen(tok))) < 0) return -1;
  m->type = (uint8_t)code;
  info = ovn_msg_info(m->type);
  while ((tok = strtok(NULL, " \t")) != NULL) {
    char *eq = strchr(tok, '='), *end;
    const char *value;
    unsigned i;
    if (eq == NULL) return -1;
    *eq = '\0';
    value = eq + 1;
    if (strcmp(tok, "seq") == 0) {
      unsigned long v = strtoul(value, &end, 10);
      if (*value == '\0' || *end != '\0' || v > 0xFFFFul) return -1;
      m->seq = (uint16_t)v;
      continue;
    }
    for (i = 0; i < info->nfields && strcmp(tok, ovn_field_name(m->type, i)) != 0; i++) continue;
    if (i == info->nfields) return -1;
    {
      const ovn_field_t *f = &info->fields[i];
      uint8_t *at = (uint8_t *)&m->u + f->offset;
      if (f->kind == OVN_KIND_STR || f->kind == OVN_KIND_BYTES) {
        unsigned char data[256];
        long n;
        if (strncmp(value, "hex:", 4) != 0) return -1;
        n = parse_hex(value + 4, strlen(value + 4), data, sizeof data);
        if (n < 0 || n > 255) return -1;
        /* Copy up to max bytes but keep the real length, so the encoder reports over-long fields. */
        at[0] = (uint8_t)n;
        memcpy(at + 1, data, (size_t)n > f->max ? f->max : (size_t)n);
        if (f->kind == OVN_KIND_STR && (size_t)n <= f->max) at[1 + n] = 0;
      } else {
        unsigned long v = strtoul(value, &end, 10);
        unsigned long limit = f->kind == OVN_KIND_U8 ? 0xFFul : f->kind == OVN_KIND_U16 ? 0xFFFFul : 0xFFFFFFFFul;
        if (*value == '\0' || *value == '-' || *end != '\0' || v > limit) return -1;
        switch (f->kind) {
          case OVN_KIND_U8: *at = (uint8_t)v; break;
          case OVN_KIND_U16: *(uint16_t *)(void *)at = (uint16_t)v; break;
          default: *(uint32_t *)(void *)at = (uint32_t)v; break;
        }
      }
    }
  }
  return 0;
}

static int mode_decode(void) {
  char *line;
  static unsigned char frame[1u << 16];
  while ((line = read_line()) != NULL) {
    ovn_msg_t m;
    long n = parse_hex(line, strlen(line), frame, sizeof frame);
    if (n < 0) {
      printf("err bad-hex\n");
      continue;
    }
    print_result(ovn_decode(frame, (size_t)n, &m), &m);
  }
  return 0;
}

static int mode_encode(void) {
  char *line;
  while ((line = read_line()) != NULL) {
    ovn_msg_t m;
    uint8_t wire[OVN_MAX_WIRE_FRAME];
    int n;
    if (parse_message(line, &m) != 0) {
      printf("err parse\n");
      continue;
    }
    n = ovn_encode(&m, wire, sizeof wire);
    if (n < 0) {
      printf("err %s\n", ovn_error_name(n));
      continue;
    }
    print_hex(wire, (size_t)n);
    printf("\n");
  }
  return 0;
}

static int mode_stream(void) {
  ovn_framer_t rx;
  ovn_msg_t m;
  char *line;
  ovn_framer_init(&rx);
  while ((line = read_line()) != NULL) {
    size_t i;
    int hi = -1;
    for (i = 0; line[i] != '\0'; i++) {
      int d = hex_digit(line[i]);
      if (d < 0) continue;
      if (hi < 0) {
        hi = d;
      } else {
        int r = ovn_framer_push(&rx, (uint8_t)(hi * 16 + d), &m);
        hi = -1;
        if (r != 0) print_result(r, &m);
      }
    }
  }
  return 0;
}

static int mode_crc(void) {
  char *line;
  static unsigned char data[1u << 16];
  while ((line = read_line()) != NULL) {
    long n = parse_hex(line, strlen(line), data, sizeof data);
    if (n < 0) printf("err bad-hex\n");
    else printf("%04x\n", (unsigned)ovn_crc16(data, (size_t)n));
  }
  return 0;
}

static int mode_table(void) {
  static const char *const kinds[] = { "u8", "u16", "u32", "str", "bytes" };
  static const char *const from[] = { "?", "node", "gateway", "either" };
  unsigned code, i;
  for (code = 0; code < 256u; code++) {
    const ovn_msg_info_t *info = ovn_msg_info((uint8_t)code);
    if (info == NULL) continue;
    printf("%s code=%u from=%s reliable=%u", ovn_type_name(info->code), (unsigned)info->code, from[info->from],
           (unsigned)info->reliable);
    for (i = 0; i < info->nfields; i++) {
      const ovn_field_t *f = &info->fields[i];
      printf(" %s:%s", ovn_field_name(info->code, i), kinds[f->kind]);
      if (f->kind == OVN_KIND_STR || f->kind == OVN_KIND_BYTES) printf(":%u", (unsigned)f->max);
    }
    printf("\n");
  }
  return 0;
}

/* Reads the whitespace-separated decimal numbers of a line into out; returns how many, or -1 if malformed. */
static int parse_numbers(const char *line, unsigned long *out, int cap) {
  int n = 0;
  while (*line != '\0') {
    char *end;
    unsigned long v;
    if (*line == ' ' || *line == '\t') {
      line++;
      continue;
    }
    v = strtoul(line, &end, 10);
    if (end == line || n == cap) return -1;
    out[n++] = v;
    line = end;
  }
  return n;
}

static int mode_replay(void) {
  static const char *const names[] = { "new", "duplicate", "old" };
  char *line;
  while ((line = read_line()) != NULL) {
    unsigned long seqs[256];
    ovn_replay_t w;
    int i, n = parse_numbers(line, seqs, 256);
    ovn_replay_init(&w);
    for (i = 0; i < n; i++) printf("%s%s", i ? " " : "", names[ovn_replay_check(&w, (uint16_t)seqs[i])]);
    printf("%s\n", n < 0 ? "err parse" : "");
  }
  return 0;
}

static int mode_growth(void) {
  char *line;
  while ((line = read_line()) != NULL) {
    unsigned long v[2];
    if (parse_numbers(line, v, 2) != 2) printf("err parse\n");
    else printf("%lu\n", (unsigned long)ovn_counter_growth((uint32_t)v[0], (uint32_t)v[1]));
  }
  return 0;
}

static int mode_boots(void) {
  static const char *const names[] = { "current", "new", "stale" };
  char *line;
  while ((line = read_line()) != NULL) {
    unsigned long ids[256];
    ovn_boots_t b;
    int i, n = parse_numbers(line, ids, 256);
    ovn_boots_init(&b);
    for (i = 0; i < n; i++) printf("%s%s", i ? " " : "", names[ovn_boot_check(&b, (uint32_t)ids[i])]);
    printf("%s\n", n < 0 ? "err parse" : "");
  }
  return 0;
}

static int mode_consts(void) {
  int e;
  for (e = -1; e >= -8; e--) printf("error%d=%s\n", e, ovn_error_name(e));
#define C(x) printf("%s=%lu\n", #x, (unsigned long)(x))
  C(OVN_PROTOCOL_VERSION); C(OVN_MAX_PAYLOAD); C(OVN_MAX_FRAME); C(OVN_MAX_WIRE_FRAME);
  C(OVN_REPLAY_WINDOW); C(OVN_PAST_BOOTS);
  C(OVN_CAPABILITY_BADGE_READER); C(OVN_CAPABILITY_RELAY); C(OVN_CAPABILITY_RELAY_SENSE); C(OVN_CAPABILITY_ENERGY_METER);
  C(OVN_CAPABILITY_BUSY_INPUT); C(OVN_CAPABILITY_FILAMENT_ENCODER); C(OVN_CAPABILITY_INDICATOR); C(OVN_CAPABILITY_DISPLAY);
  C(OVN_RESET_CAUSE_UNKNOWN); C(OVN_RESET_CAUSE_POWER_ON); C(OVN_RESET_CAUSE_BROWN_OUT); C(OVN_RESET_CAUSE_WATCHDOG);
  C(OVN_RESET_CAUSE_SOFTWARE); C(OVN_RESET_CAUSE_EXTERNAL); C(OVN_RESET_CAUSE_FIRMWARE_UPDATE);
  C(OVN_HEARTBEAT_FLAG_RELAY_REQUESTED); C(OVN_HEARTBEAT_FLAG_RELAY_SENSED); C(OVN_HEARTBEAT_FLAG_BUSY);
  C(OVN_HEARTBEAT_FLAG_FAULT_ACTIVE); C(OVN_HEARTBEAT_FLAG_READER_OK);
  C(OVN_READER_UNKNOWN); C(OVN_READER_EM4100); C(OVN_READER_ISO14443A); C(OVN_READER_ISO15693); C(OVN_READER_HID_PROX);
  C(OVN_RELAY_SENSED_OFF); C(OVN_RELAY_SENSED_ON); C(OVN_RELAY_SENSED_UNKNOWN);
  C(OVN_RELAY_REASON_UNSPECIFIED); C(OVN_RELAY_REASON_SESSION_START); C(OVN_RELAY_REASON_SESSION_END);
  C(OVN_RELAY_REASON_IDLE_TIMEOUT); C(OVN_RELAY_REASON_MAINTAINER); C(OVN_RELAY_REASON_FAULT);
  C(OVN_RELAY_REASON_GATEWAY_SHUTDOWN); C(OVN_RELAY_REASON_MAX_DURATION);
  C(OVN_NODE_RELAY_REASON_LOCAL_BUTTON); C(OVN_NODE_RELAY_REASON_NODE_BOOT); C(OVN_NODE_RELAY_REASON_OVERCURRENT);
  C(OVN_NODE_RELAY_REASON_LINK_LOST);
  C(OVN_INPUT_BIT_BUSY); C(OVN_INPUT_BIT_DOOR); C(OVN_INPUT_BIT_ESTOP);
  C(OVN_FAULT_SEVERITY_NONE); C(OVN_FAULT_SEVERITY_WARNING); C(OVN_FAULT_SEVERITY_ERROR); C(OVN_FAULT_SEVERITY_CRITICAL);
  C(OVN_INDICATE_PATTERN_OFF); C(OVN_INDICATE_PATTERN_GRANTED); C(OVN_INDICATE_PATTERN_DENIED);
  C(OVN_INDICATE_PATTERN_WARNING); C(OVN_INDICATE_PATTERN_ERROR); C(OVN_INDICATE_PATTERN_INFO);
  C(OVN_REQUEST_WHAT_HELLO); C(OVN_REQUEST_WHAT_METER); C(OVN_REQUEST_WHAT_RELAY_STATE); C(OVN_REQUEST_WHAT_INPUT);
  C(OVN_NACK_REASON_NONE); C(OVN_NACK_REASON_UNKNOWN_TYPE); C(OVN_NACK_REASON_BAD_PAYLOAD);
  C(OVN_NACK_REASON_UNSUPPORTED_VERSION); C(OVN_NACK_REASON_REFUSED); C(OVN_NACK_REASON_INVALID_STATE);
#undef C
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "decode") == 0) return mode_decode();
  if (strcmp(mode, "encode") == 0) return mode_encode();
  if (strcmp(mode, "stream") == 0) return mode_stream();
  if (strcmp(mode, "crc") == 0) return mode_crc();
  if (strcmp(mode, "table") == 0) return mode_table();
  if (strcmp(mode, "consts") == 0) return mode_consts();
  if (strcmp(mode, "replay") == 0) return mode_replay();
  if (strcmp(mode, "growth") == 0) return mode_growth();
  if (strcmp(mode, "boots") == 0) return mode_boots();
  fprintf(stderr, "usage: %s decode|encode|stream|crc|table|consts|replay|growth|boots < input\n", argc > 0 ? argv[0] : "check_vectors");
  return 2;
}
