/**
 * grpc.health.v1 on the ext_proc port, served by the official
 * grpc-health-check package. One status for the whole server (service "" and
 * the ext_proc service name): SERVING only while the store answers and the
 * process is not draining. Other service names: NOT_FOUND (Check),
 * SERVICE_UNKNOWN (Watch).
 */
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { EXT_PROC_SERVICE } from './protos.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

const SERVICES = ['', EXT_PROC_SERVICE];

export class Health {
  private status: ServingStatus = 'NOT_SERVING';
  private readonly impl = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, this.status])));

  /** @param onChange told of every change (the mcp_pin_serving gauge). */
  constructor(private readonly onChange: (status: ServingStatus) => void = () => {}) {}

  get current(): ServingStatus {
    return this.status;
  }

  set(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const s of SERVICES) this.impl.setStatus(s, status);
    this.onChange(status);
  }

  addTo(server: grpc.Server): void {
    this.impl.addToServer(server);
  }
}
