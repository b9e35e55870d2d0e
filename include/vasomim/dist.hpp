#pragma once
// Data parallelism: communicator policies (dist::single, dist::mpi, dist::nccl) and what the
// trainers build on them.
#include "vasomim/dist/communicator.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/mpi.hpp"
#include "vasomim/dist/nccl.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/dist/single.hpp"
