import sys, itertools, numpy as np, torch
torch.set_num_threads(1)
from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.selection import module_kernels, modularization_of
path=sys.argv[1]
ck=load_checkpoint(path); cm=cost_model(ck.build(), ck.spec.input_shape); mod=modularization_of(ck, path)
pairs=list(itertools.combinations(range(10),2)); S=cm.streams
save=np.zeros(len(S)); base=[]
for p in pairs:
    k1=module_kernels(mod,p,0.9,1,cm); k8=module_kernels(mod,p,0.9,8,cm)
    b=cm.kept_fraction(k8,2); base.append(b)
    for i,members in enumerate(S):
        k=dict(k8)
        for l in members: k[l]=k1[l]
        save[i]+= b-cm.kept_fraction(k,2)
print("align8 mean", 100*np.mean(base))
for i,m in enumerate(S): print(i, m, round(100*save[i]/len(pairs),3))
