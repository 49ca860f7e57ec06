/**
 * Request fields the routes share. Every string a request carries is bounded; a longer one is
 * refused with 400 naming the field (no id of the gateway comes near these lengths).
 */
import { z } from 'zod';

/** An id in a path or a query: a tool, device, affiliate, use type. */
export const idParam = z.string().min(1).max(64, 'at most 64 characters');
