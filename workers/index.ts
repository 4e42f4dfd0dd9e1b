import { DurableObject } from "cloudflare:workers";
export class RegionDirectory extends DurableObject {
  async hello() { this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (a)"); return "hi"; }
}
export default { async fetch(req: Request, env: any) { const s = env.REGION_DIRECTORY.getByName("eu"); return new Response(await s.hello()); } };
