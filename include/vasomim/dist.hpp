#pragma once
// Data parallelism: communicator policies (dist::single, dist::mpi, dist::nccl) and what the
// trainers build on them. How train::pretrain uses them, as PyTorch DDP does:
//   - rank 0's parameters (and frozen segmentor) are broadcast at the start; at the start the ranks
//     also compare a hash of their whole configuration (check_same_configuration);
//   - the gradient buffer (one flat buffer per model) is summed across ranks before each optimiser
//     step, the backward pass having taken 1/N already, in buckets of 2^22 floats while the backward
//     pass goes on (overlapped_gradient_sum, as DDP's buckets): on host memory on a communication
//     thread (MPI_THREAD_SERIALIZED), with NCCL queued on its stream behind the kernels that wrote
//     each bucket;
//   - the sampler (data::loader_options rank / world) splits each epoch's permutation so that global
//     batch k is positions [k N b, (k+1) N b) and rank r takes slice r; augmentations and masks are
//     keyed by the position in the global batch (step_context::first_sample), so N ranks x batch b
//     train like one process x batch N b up to float round-off;
//   - the log shows losses averaged over the ranks and the images/s of all of them; only rank 0
//     writes log.csv, panels and checkpoints (after a barrier) and prints; checkpoints record the
//     world size and global batch and resume on any number of ranks;
//   - an error on any rank is printed as "rank r of N: ..." and ends the whole job (run_guarded,
//     MPI_Abort) so that no rank waits forever in a collective; Ctrl-C on any rank is agreed on by
//     all at the next step boundary.
// train::train_segmentor takes a communicator too, with synchronised BatchNorm (SyncBatchNorm: the
// per-channel sums reduced across ranks in forward and backward) and the released loss's one Dice
// (and BCE mean) over the global batch; each rank's gradient is then its share of the global
// loss's, and the shares are summed: N ranks x batch b train like one process x batch N b too.
// Layers and losses get the reduction as a cross_rank_sum (core/), so nn/ and loss/ need no dist/.
// train::finetuner::run takes one as well: per-image losses, so each rank's gradient is weighted by
// its share of the global batch's images and the shares are summed (train/finetune.hpp).
#include "vasomim/dist/communicator.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/mpi.hpp"
#include "vasomim/dist/nccl.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/dist/single.hpp"
