/*
 * Metering-node firmware for an ATmega2560 (firmware-protocol/PROTOCOL.md): HELLO, heartbeats,
 * METER from an S0 energy meter, badges from an RDM6300, the busy input, a relay with a feedback
 * contact, a status LED and a buzzer. The wire format is the C reference codec (../c), unchanged.
 */
#include <avr/eeprom.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <string.h>

#include "board.h"
#include "ovn_proto.h"

#ifndef NODE_ID
#define NODE_ID "mega-node"
#endif
#define FIRMWARE_VERSION "1.0.0"
#ifndef HEARTBEAT_S
#define HEARTBEAT_S 5u
#endif
/** The S0 meter's impulses per kWh (printed on it: 1000, 2000, 800 ...). */
#ifndef IMP_PER_KWH
#define IMP_PER_KWH 1000ul
#endif

#define ACK_TIMEOUT_MS 250u
#define MAX_TRIES 5u
#define QUEUE_LEN 8u
#define DEBOUNCE_MS 20u
#define RELAY_SETTLE_MS 50u
#define METER_ACTIVE_MS 1000u
#define METER_IDLE_MS 10000u
/** A card still in the field is read again within this; the same card later is a new tap. */
#define TAP_GAP_MS 1000u
/** No S0 pulse for this long: the power is taken as zero. */
#define S0_TIMEOUT_MS 60000ul
/* The harness writes this into GPIOR1 to stall the main loop (the watchdog then resets the board).
 * Nothing writes GPIOR1 on a real board. */
#define STALL_MAGIC 0xA5u

#define CAPABILITIES \
  (OVN_CAPABILITY_BADGE_READER | OVN_CAPABILITY_RELAY | OVN_CAPABILITY_RELAY_SENSE | OVN_CAPABILITY_ENERGY_METER | \
   OVN_CAPABILITY_BUSY_INPUT | OVN_CAPABILITY_INDICATOR)

/* ---- boot: reset cause, boot id ---- */

uint8_t mcusr_at_boot __attribute__((section(".noinit")));

/* Before main: keep MCUSR and stop a watchdog left running by a watchdog reset. */
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void) {
  mcusr_at_boot = MCUSR;
  MCUSR = 0;
  wdt_disable();
}

static uint8_t reset_cause(uint8_t mcusr) {
  if (mcusr & _BV(WDRF)) return OVN_RESET_CAUSE_WATCHDOG;
  if (mcusr & _BV(BORF)) return OVN_RESET_CAUSE_BROWN_OUT;
  if (mcusr & _BV(EXTRF)) return OVN_RESET_CAUSE_EXTERNAL;
  if (mcusr & _BV(PORF)) return OVN_RESET_CAUSE_POWER_ON;
  return OVN_RESET_CAUSE_UNKNOWN;
}

static uint32_t EEMEM ee_boot_count;

/* The boot counter kept in EEPROM mixed with ADC noise (murmur3's finaliser), never 0. */
static uint32_t pick_boot_id(void) {
  uint32_t count = eeprom_read_dword(&ee_boot_count) + 1u;
  eeprom_update_dword(&ee_boot_count, count);
  uint32_t h = count ^ 0x9E3779B9ul;
  for (uint8_t i = 0; i < 32u; i++) {
    h ^= adc_noise();
    h = (h << 5) | (h >> 27);
    h *= 0x85EBCA6Bul;
  }
  h ^= h >> 16;
  h *= 0x85EBCA6Bul;
  h ^= h >> 13;
  h *= 0xC2B2AE35ul;
  h ^= h >> 16;
  return h ? h : 1u;
}

/* ---- node state ---- */

static uint32_t boot_id;
static uint8_t boot_cause;
static uint16_t tx_seq;
static ovn_framer_t rx;
static ovn_replay_t from_gateway;
static ovn_msg_t msg_in, msg_out;
static uint8_t wire[OVN_MAX_WIRE_FRAME];

typedef struct {
  uint8_t stable, raw;
  uint32_t since;
} debounced_t;

static debounced_t busy, contact;

static struct {
  uint8_t requested, reason, report_due;
  uint16_t fault; /* the FAULT code raised, 0 if none */
  uint32_t switched_at;
} relay;

static struct {
  uint32_t pulses, energy_mwh, energy_rem;
  uint32_t relay_on_s, active_s;
  uint16_t relay_on_ms, active_ms;
  uint32_t last_tick, last_meter;
} meter;

static struct {
  uint8_t pattern;
  uint32_t start, duration;
} indication;

/* ---- link layer: stop and wait (PROTOCOL.md §7) ---- */

static ovn_msg_t queue[QUEUE_LEN];
static uint8_t q_head, q_len;
static struct {
  uint8_t active, type, tries;
  uint16_t seq, len;
  uint32_t sent_at;
  uint8_t frame[OVN_MAX_WIRE_FRAME];
} inflight;

static void transmit(ovn_msg_t *m, uint8_t *buf, uint16_t *len_out) {
  m->seq = tx_seq++;
  int n = ovn_encode(m, buf, OVN_MAX_WIRE_FRAME);
  if (n <= 0) return; /* only a bug here can make a frame the codec refuses */
  if (len_out) *len_out = (uint16_t)n;
  gateway_write(buf, (uint16_t)n);
}

static void send_now(ovn_msg_t *m) { transmit(m, wire, 0); }

/* Reliable messages are numbered when they go out, so the wire carries them in order. */
static void pump(void) {
  if (inflight.active || q_len == 0) return;
  ovn_msg_t *m = &queue[q_head];
  q_head = (uint8_t)((q_head + 1u) % QUEUE_LEN);
  q_len--;
  transmit(m, inflight.frame, &inflight.len);
  inflight.active = 1;
  inflight.type = m->type;
  inflight.seq = m->seq;
  inflight.tries = 1;
  inflight.sent_at = millis();
}

/* Queues a reliable message; when the queue is full the oldest queued one gives way (state is in the next HEARTBEAT and METER). */
static void send_reliable(const ovn_msg_t *m) {
  if (q_len == QUEUE_LEN) {
    q_head = (uint8_t)((q_head + 1u) % QUEUE_LEN);
    q_len--;
  }
  queue[(q_head + q_len) % QUEUE_LEN] = *m;
  q_len++;
  pump();
}

static void retransmit_due(uint32_t now) {
  if (!inflight.active || (int32_t)(now - inflight.sent_at) < (int32_t)ACK_TIMEOUT_MS) return; /* sent_at may be after now */
  if (inflight.tries >= MAX_TRIES) {
    inflight.active = 0; /* dropped: the node carries on */
    pump();
    return;
  }
  inflight.tries++;
  inflight.sent_at = now;
  gateway_write(inflight.frame, inflight.len);
}

/* ---- messages ---- */

static void say_hello(void) {
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_HELLO;
  OVN_SET_STR(msg_out.u.hello.node_id, NODE_ID);
  OVN_SET_STR(msg_out.u.hello.firmware, FIRMWARE_VERSION);
  msg_out.u.hello.protocol = OVN_PROTOCOL_VERSION;
  msg_out.u.hello.capabilities = CAPABILITIES;
  msg_out.u.hello.reset_cause = boot_cause;
  msg_out.u.hello.boot_id = boot_id;
  msg_out.u.hello.heartbeat_s = HEARTBEAT_S;
  send_reliable(&msg_out);
}

static void send_relay_state(uint8_t reason) {
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_RELAY_STATE;
  msg_out.u.relay_state.requested = relay.requested;
  msg_out.u.relay_state.sensed = contact.stable;
  msg_out.u.relay_state.reason = reason;
  send_reliable(&msg_out);
}

static void send_input(uint16_t changed) {
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_INPUT;
  msg_out.u.input.inputs = busy.stable ? OVN_INPUT_BIT_BUSY : 0u;
  msg_out.u.input.changed = changed;
  send_reliable(&msg_out);
}

static void send_fault(uint16_t code, uint8_t active, const char *text) {
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_FAULT;
  msg_out.u.fault.code = code;
  msg_out.u.fault.severity = OVN_FAULT_SEVERITY_ERROR;
  msg_out.u.fault.active = active;
  OVN_SET_STR(msg_out.u.fault.text, text);
  send_reliable(&msg_out);
}

static void send_heartbeat(uint32_t now) {
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_HEARTBEAT;
  msg_out.u.heartbeat.boot_id = boot_id;
  msg_out.u.heartbeat.uptime_s = now / 1000u;
  /* the RDM6300 says nothing without a card, so the reader counts as OK */
  msg_out.u.heartbeat.flags = (uint8_t)((relay.requested ? OVN_HEARTBEAT_FLAG_RELAY_REQUESTED : 0u) |
                                        (contact.stable ? OVN_HEARTBEAT_FLAG_RELAY_SENSED : 0u) |
                                        (busy.stable ? OVN_HEARTBEAT_FLAG_BUSY : 0u) |
                                        (relay.fault ? OVN_HEARTBEAT_FLAG_FAULT_ACTIVE : 0u) | OVN_HEARTBEAT_FLAG_READER_OK);
  send_now(&msg_out);
}

/* Instantaneous power from the S0 pulse interval, or from the time since the last pulse once that is longer. */
static uint32_t power_mw(const s0_t *s, uint32_t now) {
  if (s->count < 2u) return 0;
  uint32_t gap = now - s->last_ms;
  if (gap > S0_TIMEOUT_MS) return 0;
  uint32_t ms = gap > s->interval_ms ? gap : s->interval_ms;
  if (ms == 0) return 0;
  /* 1 pulse = 3.6e9 mW·ms / IMP_PER_KWH ... per kWh: 3.6e12 mW·ms */
  return (uint32_t)(3600000000000ull / ((uint64_t)IMP_PER_KWH * ms));
}

static void send_meter(uint32_t now) {
  s0_t s;
  s0_read(&s);
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_METER;
  msg_out.u.meter.boot_id = boot_id;
  msg_out.u.meter.energy_mwh = meter.energy_mwh;
  msg_out.u.meter.relay_on_s = meter.relay_on_s;
  msg_out.u.meter.active_s = meter.active_s;
  msg_out.u.meter.power_mw = power_mw(&s, now);
  /* an S0 meter gives energy only: current and voltage are not measured (0) */
  send_now(&msg_out);
  meter.last_meter = now;
}

/* ---- what the gateway asks ---- */

static void ack(const ovn_msg_t *m, uint8_t nack_reason) {
  ovn_msg_t a;
  memset(&a, 0, sizeof a);
  if (nack_reason) {
    a.type = OVN_NACK;
    a.u.nack.ack_seq = m->seq;
    a.u.nack.ack_type = m->type;
    a.u.nack.reason = nack_reason;
  } else {
    a.type = OVN_ACK;
    a.u.ack.ack_seq = m->seq;
    a.u.ack.ack_type = m->type;
  }
  send_now(&a);
}

static void on_message(const ovn_msg_t *m, uint32_t now) {
  if (m->type == OVN_ACK || m->type == OVN_NACK) {
    uint16_t seq = m->type == OVN_ACK ? m->u.ack.ack_seq : m->u.nack.ack_seq;
    uint8_t type = m->type == OVN_ACK ? m->u.ack.ack_type : m->u.nack.ack_type;
    if (inflight.active && seq == inflight.seq && type == inflight.type) {
      inflight.active = 0;
      pump();
    }
    return;
  }
  const ovn_msg_info_t *info = ovn_msg_info(m->type);
  if (!info->reliable) return; /* a node's own unreliable messages coming back: nothing to do */
  if (!(info->from & OVN_FROM_GATEWAY)) {
    ack(m, OVN_NACK_REASON_INVALID_STATE);
    return;
  }
  ack(m, 0);
  /* a repeat within the window is acknowledged again, not acted on; an old one is new to a node (the gateway numbers from a random start) */
  if (ovn_replay_check(&from_gateway, m->seq) == OVN_REPLAY_DUPLICATE) return;
  switch (m->type) {
    case OVN_RELAY_SET:
      relay.requested = m->u.relay_set.state ? 1u : 0u;
      relay.reason = m->u.relay_set.reason;
      relay_drive(relay.requested);
      relay.switched_at = now;
      relay.report_due = 1;
      break;
    case OVN_INDICATE:
      indication.pattern = m->u.indicate.pattern;
      indication.start = now;
      indication.duration = m->u.indicate.duration_ms;
      break;
    case OVN_REQUEST:
      switch (m->u.request.what) {
        case OVN_REQUEST_WHAT_HELLO: say_hello(); break;
        case OVN_REQUEST_WHAT_METER: send_meter(now); break;
        case OVN_REQUEST_WHAT_RELAY_STATE: send_relay_state(OVN_RELAY_REASON_UNSPECIFIED); break;
        case OVN_REQUEST_WHAT_INPUT: send_input(0); break;
        default: break;
      }
      break;
    default: break;
  }
}

/* ---- the tool's side: inputs, relay, meter ---- */

/* True when the input settled on a new level. */
static uint8_t debounce(debounced_t *d, uint8_t raw, uint32_t now) {
  if (raw != d->raw) {
    d->raw = raw;
    d->since = now;
  } else if (raw != d->stable && now - d->since >= DEBOUNCE_MS) {
    d->stable = raw;
    return 1;
  }
  return 0;
}

/* The sensed contact against the command, once settled: a mismatch raises FAULT, a match clears it. */
static void check_relay_fault(void) {
  uint16_t code = 0;
  if (contact.stable != relay.requested) code = relay.requested ? 0x0103u : 0x0102u;
  if (code == relay.fault) return;
  if (relay.fault) send_fault(relay.fault, 0, "relay contact follows the coil again");
  if (code) send_fault(code, 1, code == 0x0102u ? "relay welded: contact closed, coil off" : "relay failed to close");
  relay.fault = code;
}

static void poll_inputs(uint32_t now) {
  if (debounce(&busy, busy_raw(), now)) send_input(OVN_INPUT_BIT_BUSY);
  uint8_t contact_changed = debounce(&contact, contact_raw(), now);
  if (relay.report_due && now - relay.switched_at >= RELAY_SETTLE_MS) {
    relay.report_due = 0;
    send_relay_state(relay.reason);
    check_relay_fault();
  } else if (contact_changed && !relay.report_due) {
    send_relay_state(OVN_RELAY_REASON_UNSPECIFIED); /* the contact moved by itself */
    check_relay_fault();
  }
}

static void count(uint32_t now) {
  s0_t s;
  s0_read(&s);
  for (; meter.pulses != s.count; meter.pulses++) {
    /* 1 kWh = 1e6 mWh; the remainder carries, so no energy is lost to rounding */
    meter.energy_mwh += 1000000ul / IMP_PER_KWH;
    meter.energy_rem += 1000000ul % IMP_PER_KWH;
    if (meter.energy_rem >= IMP_PER_KWH) {
      meter.energy_rem -= IMP_PER_KWH;
      meter.energy_mwh++;
    }
  }
  for (; meter.last_tick != now; meter.last_tick++) {
    if (!contact.stable) continue;
    if (++meter.relay_on_ms == 1000u) {
      meter.relay_on_ms = 0;
      meter.relay_on_s++;
    }
    if (busy.stable && ++meter.active_ms == 1000u) {
      meter.active_ms = 0;
      meter.active_s++;
    }
  }
}

/* ---- LED and buzzer ---- */

static void indicate(uint32_t now) {
  uint32_t t = now - indication.start;
  if (indication.pattern != OVN_INDICATE_PATTERN_OFF && t >= indication.duration) indication.pattern = OVN_INDICATE_PATTERN_OFF;
  uint8_t led, buzz = 0;
  switch (indication.pattern) {
    case OVN_INDICATE_PATTERN_GRANTED: led = 1; buzz = t < 150u; break;
    case OVN_INDICATE_PATTERN_DENIED: led = (t / 100u) & 1u; buzz = t < 600u && !((t / 100u) & 1u); break;
    case OVN_INDICATE_PATTERN_WARNING: led = (t / 500u) & 1u; buzz = t % 1000u < 100u; break;
    case OVN_INDICATE_PATTERN_ERROR: led = (t / 100u) & 1u; buzz = (t / 250u) & 1u; break;
    case OVN_INDICATE_PATTERN_INFO: led = (t / 250u) & 1u; break;
    default: led = relay.requested || now % 2000u < 50u; break; /* steady while on, a blink every 2 s otherwise */
  }
  led_set(led);
  buzzer_set(buzz);
}

/* ---- RDM6300: STX, 10 hex digits of card, 2 of checksum (XOR of the 5 bytes), ETX ---- */

static struct {
  uint8_t n, buf[12];
  uint8_t uid[5], held;
  uint32_t seen_at;
} card;

static int8_t hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return (int8_t)(c - '0');
  if (c >= 'A' && c <= 'F') return (int8_t)(c - 'A' + 10);
  if (c >= 'a' && c <= 'f') return (int8_t)(c - 'a' + 10);
  return -1;
}

static void on_card(const uint8_t *uid, uint32_t now) {
  uint8_t same = card.held && memcmp(uid, card.uid, 5) == 0 && now - card.seen_at < TAP_GAP_MS;
  memcpy(card.uid, uid, 5);
  card.held = 1;
  card.seen_at = now;
  if (same) return; /* the reader repeats a card while it stays in the field: one tap */
  memset(&msg_out, 0, sizeof msg_out);
  msg_out.type = OVN_BADGE;
  msg_out.u.badge.reader = OVN_READER_EM4100;
  OVN_SET_BYTES(msg_out.u.badge.uid, uid, 5);
  send_reliable(&msg_out);
}

static void reader_byte(uint8_t c, uint32_t now) {
  if (c == 0x02) {
    card.n = 1;
    return;
  }
  if (card.n == 0) return;
  if (c != 0x03) {
    if (card.n > 12u) card.n = 0; /* too long: wait for the next STX */
    else card.buf[card.n++ - 1u] = c;
    return;
  }
  uint8_t ok = card.n == 13u, bytes[6];
  card.n = 0;
  for (uint8_t i = 0; ok && i < 6u; i++) {
    int8_t hi = hexval(card.buf[2 * i]), lo = hexval(card.buf[2 * i + 1]);
    if (hi < 0 || lo < 0) ok = 0;
    else bytes[i] = (uint8_t)((hi << 4) | lo);
  }
  if (ok && (bytes[0] ^ bytes[1] ^ bytes[2] ^ bytes[3] ^ bytes[4]) == bytes[5]) on_card(bytes, now);
}

/* ---- main loop ---- */

int main(void) {
  boot_cause = reset_cause(mcusr_at_boot);
  board_init();
  boot_id = pick_boot_id();
  ovn_framer_init(&rx);
  ovn_replay_init(&from_gateway);
  wdt_enable(WDTO_1S);
  sei();
  relay_drive(0); /* fail-safe: off at boot */
  uint32_t now = millis();
  busy.raw = busy.stable = busy_raw();
  contact.raw = contact.stable = contact_raw();
  meter.last_tick = now;
  gateway_write((const uint8_t *)"", 1); /* a 0x00 before the first frame cuts off line noise */
  say_hello();
  /* the relay state once the contact has settled, as after a RELAY_SET: it may still be opening after a reset */
  relay.reason = OVN_NODE_RELAY_REASON_NODE_BOOT;
  relay.switched_at = now;
  relay.report_due = 1;
  uint32_t last_heartbeat = now;
  meter.last_meter = now;
  set_sleep_mode(SLEEP_MODE_IDLE);

  for (;;) {
    wdt_reset();
    while (GPIOR1 == STALL_MAGIC) {
    }
    now = millis();
    int c;
    while ((c = gateway_getc()) >= 0) {
      if (ovn_framer_push(&rx, (uint8_t)c, &msg_in) == 1) on_message(&msg_in, now);
    }
    while ((c = reader_getc()) >= 0) reader_byte((uint8_t)c, now);
    poll_inputs(now);
    count(now);
    retransmit_due(now);
    if (now - last_heartbeat >= HEARTBEAT_S * 1000ul) {
      last_heartbeat = now;
      send_heartbeat(now);
    }
    s0_t s;
    s0_read(&s);
    uint8_t drawing = contact.stable || power_mw(&s, now) > 0;
    if (now - meter.last_meter >= (drawing ? METER_ACTIVE_MS : METER_IDLE_MS)) send_meter(now);
    indicate(now);
    /* sleep until the next interrupt: the 1 ms tick or a received byte */
    cli();
    sleep_enable();
    sei();
    sleep_cpu();
    sleep_disable();
  }
}
