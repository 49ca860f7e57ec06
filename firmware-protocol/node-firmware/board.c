/* The ATmega2560's peripherals as the node uses them (pins in board.h). */
#include "board.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#define RX_RING 256u /* a power of two up to 256: the indexes are uint8_t */

typedef struct {
  volatile uint8_t buf[RX_RING];
  volatile uint8_t head, tail;
} ring_t;

static ring_t rx0, rx1;
static volatile uint32_t ms_now;
static volatile s0_t s0;

static void ring_put(ring_t *r, uint8_t b) {
  uint8_t next = (uint8_t)(r->head + 1u);
  if (next != r->tail) { /* full: the byte is lost, the framer's CRC catches it */
    r->buf[r->head] = b;
    r->head = next;
  }
}

static int ring_get(ring_t *r) {
  int b = -1;
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
    if (r->tail != r->head) {
      b = r->buf[r->tail];
      r->tail = (uint8_t)(r->tail + 1u);
    }
  }
  return b;
}

void board_init(void) {
  /* UART0: 115200 8N1 with U2X (UBRR 16 at 16 MHz: 117647 baud, 2.1 % off, within 8N1's margin) */
  UCSR0A = _BV(U2X0);
  UBRR0 = 16;
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
  /* UART1: 9600 8N1, receive only (RDM6300) */
  UCSR1A = 0;
  UBRR1 = 103;
  UCSR1C = _BV(UCSZ11) | _BV(UCSZ10);
  UCSR1B = _BV(RXEN1) | _BV(RXCIE1);
  /* Timer1: CTC, prescaler 64, 250 counts = 1 ms */
  TCCR1A = 0;
  OCR1A = 249;
  TCCR1B = _BV(WGM12) | _BV(CS11) | _BV(CS10);
  TIMSK1 = _BV(OCIE1A);
  /* inputs with pull-ups: S0 (PE4), busy (PG5), relay contact (PH5) */
  DDRE &= (uint8_t)~_BV(PE4);
  PORTE |= _BV(PE4);
  DDRG &= (uint8_t)~_BV(PG5);
  PORTG |= _BV(PG5);
  DDRH &= (uint8_t)~_BV(PH5);
  PORTH |= _BV(PH5);
  /* outputs, all off: relay (PH4), buzzer (PH6), LED (PB7) */
  PORTH &= (uint8_t)~(_BV(PH4) | _BV(PH6));
  DDRH |= _BV(PH4) | _BV(PH6);
  PORTB &= (uint8_t)~_BV(PB7);
  DDRB |= _BV(PB7);
  /* INT4 on the falling edge: the S0 output closes at the start of a pulse */
  EICRB = (uint8_t)((EICRB & ~(_BV(ISC41) | _BV(ISC40))) | _BV(ISC41));
  EIFR = _BV(INTF4);
  EIMSK |= _BV(INT4);
}

ISR(TIMER1_COMPA_vect) { ms_now++; }
ISR(USART0_RX_vect) { ring_put(&rx0, UDR0); }
ISR(USART1_RX_vect) { ring_put(&rx1, UDR1); }

/* An S0 pulse lasts at least 30 ms (EN 62053-31); edges closer than 20 ms are contact bounce. */
#define S0_MIN_GAP_MS 20u

ISR(INT4_vect) {
  uint32_t now = ms_now;
  if (s0.count > 0 && now - s0.last_ms < S0_MIN_GAP_MS) return;
  if (s0.count > 0) s0.interval_ms = now - s0.last_ms;
  s0.last_ms = now;
  s0.count++;
}

uint32_t millis(void) {
  uint32_t v;
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { v = ms_now; }
  return v;
}

void s0_read(s0_t *out) {
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
    out->count = s0.count;
    out->last_ms = s0.last_ms;
    out->interval_ms = s0.interval_ms;
  }
}

int gateway_getc(void) { return ring_get(&rx0); }
int reader_getc(void) { return ring_get(&rx1); }

void gateway_write(const uint8_t *data, uint16_t len) {
  while (len--) {
    loop_until_bit_is_set(UCSR0A, UDRE0);
    UDR0 = *data++;
  }
}

uint8_t busy_raw(void) { return bit_is_clear(PING, PG5) ? 1u : 0u; }
uint8_t contact_raw(void) { return bit_is_clear(PINH, PH5) ? 1u : 0u; }

void relay_drive(uint8_t on) {
  if (on) PORTH |= _BV(PH4);
  else PORTH &= (uint8_t)~_BV(PH4);
}

void led_set(uint8_t on) {
  if (on) PORTB |= _BV(PB7);
  else PORTB &= (uint8_t)~_BV(PB7);
}

void buzzer_set(uint8_t on) {
  if (on) PORTH |= _BV(PH6);
  else PORTH &= (uint8_t)~_BV(PH6);
}

uint16_t adc_noise(void) {
  ADMUX = _BV(REFS0); /* AVcc reference, channel ADC0 */
  ADCSRB = 0;
  ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
  ADCSRA |= _BV(ADSC);
  loop_until_bit_is_clear(ADCSRA, ADSC);
  uint16_t v = ADC;
  ADCSRA = 0;
  return v;
}
