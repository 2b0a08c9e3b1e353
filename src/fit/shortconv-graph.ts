/**
 * llama.cpp's reserved graph for LFM2-style hybrids: short-convolution blocks beside attention
 * blocks, each followed by the SwiGLU feed-forward (src/models/lfm2.cpp, llama_model_lfm2::graph),
 * with the hybrid memory's inputs (llama-graph.cpp build_inp_mem_hybrid: the recurrent state's
 * s_copy, then the attention cache's inputs) and build_rs reading each conv layer's state.
 * The attention block, feed-forward and output are ./llama-graph.ts's.
 */
import { DecoderGraph, type DecoderShape, type GraphParams, type LayerInputs } from "./llama-graph.js";
import type { ComputeGraph, Tensor } from "./ggml-graph.js";
import { GgmlType } from "../quant/ggml-types.js";

/** The reserve ubatch holds one sequence (llama_context::sched_reserve with a unified or single-sequence cache). */
const SEQUENCES = 1;

export function buildShortConvGraph(shape: DecoderShape, params: GraphParams): ComputeGraph {
  const b = new ShortConvGraph(shape, params);
  let inpL = b.inputEmbeddings();
  const sCopy = b.g.input("rs_s_copy", GgmlType.I32, [SEQUENCES]);
  const inputs = b.layerInputs();
  for (let il = 0; il < shape.nLayer; il++) inpL = b.hybridLayer(il, inpL, inputs, sCopy);
  b.output(inpL, shape.outputNorm);
  return b.gf;
}

class ShortConvGraph extends DecoderGraph {
  constructor(shape: DecoderShape, params: GraphParams) {
    super(shape, params);
  }

  /** operator norm -> conv or attention -> residual (previous input first) -> ffn norm -> SwiGLU -> residual. */
  hybridLayer(il: number, inpL: Tensor, inputs: LayerInputs, sCopy: Tensor): Tensor {
    const { g, shape } = this;
    const p = `blk.${il}`;
    let prev = inpL;
    let cur = this.norm(inpL, `${p}.attn_norm.weight`);
    cur = (shape.recurrentState?.[il] ?? 0) > 0 ? this.shortConv(il, cur, sCopy) : this.attention(il, cur, inputs);
    if (il === shape.nLayer - 1) {
      cur = g.getRows(cur, inputs.outIds);
      prev = g.getRows(prev, inputs.outIds);
    }
    cur = g.add(prev, cur);
    const ffnOut = this.feedForward(p, this.norm(cur, `${p}.ffn_norm.weight`));
    return g.add(cur, ffnOut);
  }

  /** build_shortconv_block: in_proj -> B, C, x views; B*x transposed; the state prepended; ssm_conv; C*conv; out_proj. */
  private shortConv(il: number, cur: Tensor, sCopy: Tensor): Tensor {
    const { g, gf, shape, T } = this;
    const p = `blk.${il}`;
    const nEmbd = shape.nEmbd;
    const stateSize = shape.recurrentState![il]!;
    const dConv = stateSize / nEmbd;
    const x3 = g.reshape(cur, [nEmbd, T / SEQUENCES, SEQUENCES]);
    const bcx = g.mulMat(this.required(`${p}.shortconv.in_proj.weight`), x3);
    const chunk = (): Tensor => g.view(bcx, [nEmbd, bcx.ne[1], bcx.ne[2]], [bcx.nb[1], bcx.nb[2]]);
    const [b, c, x] = [chunk(), chunk(), chunk()];
    const bx = g.transpose(g.mul(b, x));
    const convState = g.external(`cache_r_l${il}`, GgmlType.F32, [stateSize, SEQUENCES]);
    const conv = g.reshape(this.readState(convState, stateSize, sCopy), [dConv, nEmbd, SEQUENCES]);
    const sx = g.concat(conv, bx, 0);
    // the final state written back: the last d_conv columns
    const snapshot = g.view(sx, [dConv, sx.ne[1], sx.ne[2]], [sx.nb[1], sx.nb[2]]);
    gf.expand(g.cpy(snapshot, g.view(convState, [stateSize, SEQUENCES], [convState.nb[1]])));
    const convOut = g.ssmConv(sx, this.required(`${p}.shortconv.conv.weight`));
    const y = g.mulMat(this.required(`${p}.shortconv.out_proj.weight`), g.mul(c, convOut));
    return g.reshape(y, [y.ne[0], y.ne[1] * y.ne[2]]);
  }

  /** build_rs: clear the zero state in place, gather the sequences' states, copy the extra ones (none here). */
  private readState(s: Tensor, stateSize: number, sCopy: Tensor): Tensor {
    const { g, gf } = this;
    const states = g.reshape(s, [stateSize, s.ne[1]]);
    gf.expand(g.scaleInplace(g.view(states, [stateSize], [])));
    const main = g.view(sCopy, [SEQUENCES], []);
    const extra = g.view(sCopy, [0], []);
    const output = g.getRows(states, main);
    gf.expand(output);
    gf.expand(g.cpy(g.getRows(states, extra), g.view(s, [stateSize, 0], [s.nb[1]])));
    return output;
  }
}
