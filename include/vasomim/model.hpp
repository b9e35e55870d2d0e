#pragma once
// Model composition pieces available on this branch: the guidance policies.

#include "vasomim/model/guidance.hpp"
