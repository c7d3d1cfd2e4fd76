"""SIRT-88 against SIRT-100 (ASTRA, box [0, 1]) on the first 200 embedded test digits: how much
of the hybrid loop's deficit at many angles is its 12 fewer SIRT iterations.
Run from the repository root: /path/to/venv/bin/python tools/ct/sirt_iterations.py
"""
import gzip, numpy as np, astra
with gzip.open('crates/netinv-data/data/t10k-images-idx3-ubyte.gz') as f: raw=f.read()
imgs=np.frombuffer(raw[16:],dtype=np.uint8).reshape(-1,28,28).astype(np.float32)/255.0
def psnr(a,b): return 10*np.log10(1.0/np.mean((a-b)**2))
for na in [4,8,30,90]:
    vol=astra.create_vol_geom(28,28)
    proj=astra.create_proj_geom('parallel',1.0,int(np.ceil(np.sqrt(2)*28))+2,np.arange(na)*np.pi/na)
    pid=astra.create_projector('linear',proj,vol)
    d=[]
    for img in imgs[:200]:
        _,sino=astra.create_sino(img,pid)
        res={}
        for it in (88,100):
            rid=astra.data2d.create('-vol',vol,0); sid=astra.data2d.create('-sino',proj,sino)
            cfg=astra.astra_dict('SIRT'); cfg['ReconstructionDataId']=rid; cfg['ProjectionDataId']=sid; cfg['ProjectorId']=pid
            cfg['option']={'MinConstraint':0.0,'MaxConstraint':1.0}
            aid=astra.algorithm.create(cfg); astra.algorithm.run(aid,it); res[it]=astra.data2d.get(rid)
            astra.algorithm.delete(aid); astra.data2d.delete([rid,sid])
        d.append(psnr(img,res[88])-psnr(img,res[100]))
    print(na, 'SIRT-88 minus SIRT-100: %.2f dB (mean over 200)'%np.mean(d))
